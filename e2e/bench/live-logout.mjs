// How long a signed-in tab takes to show "Signed out" after Universal Logout, in a real browser.
//
//   cd e2e && npm run bench:live                      # the debug build
//   UAL_TODO_BIN=../target/release/ual-todo npm run bench:live
//   BENCH_RUNS=50 npm run bench:live                  # more runs (at least 20)
//
// For each run: alice signs in (again) on a tab, the tab's live stream opens, a MutationObserver
// in the page records Date.now() when the "Signed out" card appears; the latency is that minus
// Date.now() taken in Node just before the request is sent (same machine, same clock). Two
// set-ups: the tab and the request on one instance, and the tab on instance B with the request
// sent to instance A (the revocation reaches B through PostgreSQL LISTEN/NOTIFY).
// Prints median, p90 and max, and writes them to artifacts/live-logout-bench.json (plus a copy
// named after the build, e.g. live-logout-bench.release.json).

import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { basename, dirname } from 'node:path';
import {
  APP_BIN, installSignedOutProbe, launchBrowser, login, signedOutAt, startApp,
  universalLogout, waitForLiveStream,
} from '../lib/app.mjs';
import { stats, writeReport } from './report.mjs';

const RUNS = Math.max(20, Number(process.env.BENCH_RUNS ?? 25));
const WARM_UP = 2;
const ARRIVAL_TIMEOUT_MS = 10_000;

const build = basename(dirname(APP_BIN)); // "debug" or "release" under target/
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function waitFor(what, check, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** One measurement: sign in on `tabUrl`, send Universal Logout to `ualUrl`, time the card. */
async function measure(page, app, alice, tabUrl, ualUrl) {
  await login(page, tabUrl, alice.email, alice.password);
  if (new URL(page.url()).pathname !== '/todos') throw new Error(`sign-in failed: ${page.url()}`);
  await waitForLiveStream(page);
  await installSignedOutProbe(page);

  const t0 = Date.now();
  const response = await universalLogout(ualUrl, app.apiKey, alice.email);
  const answeredMs = Date.now() - t0;
  if (response.status !== 204) throw new Error(`Universal Logout answered ${response.status}: ${await response.text()}`);

  let arrival = null;
  await waitFor('the "Signed out" card', async () => (arrival = await signedOutAt(page)) !== null, ARRIVAL_TIMEOUT_MS);
  // Let the page finish moving to the sign-in page before the next run.
  await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('reason') === 'ual', { timeout: 5_000 });
  await page.waitForLoadState('load');
  return { latencyMs: arrival - t0, answeredMs };
}

async function main() {
  const version = (() => {
    try { return execFileSync(APP_BIN, ['--version'], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; }
  })();
  console.log(`ual-todo: ${APP_BIN} (${build}; ${version}); ${RUNS} runs per set-up after ${WARM_UP} warm-up runs`);
  const app = await startApp();
  let browser;
  try {
    const b = await app.startInstance();
    await waitFor('instance B to listen', () => /listening for revocations/.test(b.serverLog()));
    browser = await launchBrowser();
    const context = await browser.newContext();
    const page = await context.newPage();
    const alice = app.accounts.alice;

    const setups = {
      one_instance: { tab: app.url, ual: app.url, label: 'one instance (tab and request on A)' },
      two_instances: { tab: b.url, ual: app.url, label: 'two instances (tab on B, request to A)' },
    };
    const results = {};
    for (const [key, setup] of Object.entries(setups)) {
      const latencies = [];
      const answered = [];
      for (let run = 0; run < WARM_UP + RUNS; run++) {
        const { latencyMs, answeredMs } = await measure(page, app, alice, setup.tab, setup.ual);
        if (run < WARM_UP) continue;
        latencies.push(latencyMs);
        answered.push(answeredMs);
      }
      results[key] = { setup: setup.label, card_shown: stats(latencies), response_204: stats(answered), samples_ms: latencies };
      const s = results[key].card_shown;
      console.log(`${setup.label}: card shown after median ${s.median_ms} ms, p90 ${s.p90_ms} ms, max ${s.max_ms} ms `
        + `(min ${s.min_ms}; 204 answered after median ${results[key].response_204.median_ms} ms)`);
    }

    const report = {
      measured_at: new Date().toISOString(),
      binary: APP_BIN,
      build,
      version,
      cpus: cpus().length,
      chromium: browser.version(),
      runs_per_setup: RUNS,
      warm_up_runs: WARM_UP,
      what: 'ms from Date.now() in Node just before POST /global-token-revocation to Date.now() in the page when '
        + 'the "Signed out" card appeared (MutationObserver)',
      ...results,
    };
    await writeReport('live-logout-bench', build, report);
  } finally {
    await browser?.close();
    await app.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
