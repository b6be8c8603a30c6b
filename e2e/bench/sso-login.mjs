// How long one single sign-on round trip takes in a real browser, through the test OpenID Provider
// (e2e/idp, oidc-provider) and its own login page.
//
//   cd e2e && npm run bench:sso                       # the debug build
//   UAL_TODO_BIN=../target/release/ual-todo npm run bench:sso
//   BENCH_RUNS=50 npm run bench:sso                   # more runs (at least 20)
//
// Each run uses a fresh browser context (no cookies), so the provider asks for the login every
// time, and its own client address (X-Forwarded-For, trusted for the bench): each run is another
// person, and the app allows 30 SSO starts per address in 10 minutes. On the app's sign-in page the work email is typed into "Sign in with SSO"; then two parts
// are timed, both in Node (Date.now() just before the click to Playwright seeing the `load` event
// of the page it leads to):
//   (a) click "Continue with your organisation" → the provider's login page loaded
//       (POST /auth/oidc/start → 303 → {issuer}/auth → 303 → {issuer}/interaction/…);
//   (b) click the provider's "Sign-in" (login and password already typed) → the app's todo list
//       loaded (POST {issuer}/interaction/… → 303 → {issuer}/auth/… → 303 → /auth/oidc/callback,
//       where the app exchanges the code and checks the ID token → 303 → /todos);
// and their sum. Typing is not timed. Each part is timed on the browser's clock, from the click
// event (a capturing listener in every page records performance.timeOrigin + event.timeStamp) to
// the end of the load event of the page reached (its timeOrigin + Navigation Timing's
// loadEventEnd); and on Node's clock, from just before Playwright's click() to Playwright seeing
// that load event, which adds Playwright's own work (its click waits until the button is stable
// and hit-testable, typically 50–300 ms here).
// Chromium resolves no host but 127.0.0.1 (the provider's pages ask for a Google web font).
// Prints median, p90 and max; writes artifacts/sso-login-bench.json (and a copy named after the
// build, e.g. sso-login-bench.release.json).

import { execFileSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { basename, dirname } from 'node:path';
import {
  APP_BIN, LOCAL_ONLY_ARGS, launchBrowser, ssoForm, startApp, startOrgIdp,
} from '../lib/app.mjs';
import { stats, writeReport } from './report.mjs';

const RUNS = Math.max(20, Number(process.env.BENCH_RUNS ?? 25));
const WARM_UP = 2;
const STEP_TIMEOUT_MS = 15_000;

const build = basename(dirname(APP_BIN)); // "debug" or "release" under target/

/** When, on the browser's clock (epoch ms), `page`'s document finished its load event. */
const loadedAt = (page) => page.evaluate(() => {
  const [nav] = performance.getEntriesByType('navigation');
  return performance.timeOrigin + nav.loadEventEnd;
});

/**
 * Clicks `button`; resolves once `page` has loaded a URL that `isThere` accepts, with the ms from
 * the click event to the end of that page's load event (browser) and from the call to Playwright
 * seeing it (wall).
 */
async function timedClick(page, clicks, button, isThere) {
  const loaded = page.waitForURL(isThere, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
  clicks.length = 0;
  const t0 = Date.now();
  await button.click();
  await loaded;
  const wallMs = Date.now() - t0;
  if (clicks.length !== 1) throw new Error(`expected one click event, saw ${clicks.length}`);
  return { browserMs: Math.round((await loadedAt(page) - clicks[0]) * 10) / 10, wallMs };
}

/**
 * One SSO sign-in of `user` in a fresh context, from client address number `run`; resolves with
 * the timings of its two parts.
 */
async function measure(browser, app, issuer, user, run) {
  const address = `10.0.${Math.floor(run / 256) % 256}.${run % 256}`;
  const context = await browser.newContext({ extraHTTPHeaders: { 'X-Forwarded-For': address } });
  try {
    // Every trusted click, on the browser's clock; reported by the page before it navigates away.
    const clicks = [];
    await context.exposeBinding('__e2eClicked', (_, at) => { clicks.push(at); });
    await context.addInitScript(() => document.addEventListener('click', (event) => {
      if (event.isTrusted) window.__e2eClicked(performance.timeOrigin + event.timeStamp);
    }, true));
    const page = await context.newPage();
    let external = 0;
    page.on('request', (request) => {
      if (!request.url().startsWith('http://127.0.0.1:')) external += 1;
    });
    await page.goto(`${app.url}/login`);
    const form = ssoForm(page);
    await form.input.fill(user.email);

    const a = await timedClick(page, clicks, form.button,
      (u) => u.origin === issuer && u.pathname.startsWith('/interaction/'));
    if (await page.locator('input[name=login]').count() !== 1) throw new Error(`no login form at ${page.url()}`);
    await page.locator('input[name=login]').fill(user.email);
    await page.locator('input[name=password]').fill('any password');

    const b = await timedClick(page, clicks, page.getByRole('button', { name: 'Sign-in' }),
      (u) => u.origin === app.url && u.pathname === '/todos');
    const who = await page.locator('nav.account .who').innerText();
    if (who !== user.email) throw new Error(`signed in as ${JSON.stringify(who)}, not ${user.email}`);
    return { a, b, external };
  } finally {
    await context.close();
  }
}

async function main() {
  const version = (() => {
    try { return execFileSync(APP_BIN, ['--version'], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; }
  })();
  const builtAt = await stat(APP_BIN).then((s) => s.mtime.toISOString(), () => 'unknown');
  console.log(`ual-todo: ${APP_BIN} (${build}; ${version}; built ${builtAt}); ${RUNS} runs after ${WARM_UP} warm-up runs`);
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  process.env.TRUST_PROXY_HEADERS = 'true'; // so each run's X-Forwarded-For is its address
  const app = await startApp();
  let idp;
  let browser;
  try {
    const alice = app.accounts.alice;
    idp = await startOrgIdp(app, {
      accounts: { [alice.email]: { sub: '00u-alice', email: alice.email, email_verified: true } },
    });
    browser = await launchBrowser({ extraArgs: LOCAL_ONLY_ARGS });
    const samples = { browser: { a: [], b: [], total: [] }, wall: { a: [], b: [], total: [] } };
    let external = 0;
    for (let run = 0; run < WARM_UP + RUNS; run++) {
      const { a, b, external: outside } = await measure(browser, app, idp.issuer, alice, run);
      if (run < WARM_UP) continue;
      for (const clock of ['browser', 'wall']) {
        const [msA, msB] = clock === 'browser' ? [a.browserMs, b.browserMs] : [a.wallMs, b.wallMs];
        samples[clock].a.push(msA);
        samples[clock].b.push(msB);
        samples[clock].total.push(Math.round((msA + msB) * 10) / 10);
      }
      external += outside;
    }
    const summary = (clock) => ({
      a_to_provider_login: stats(samples[clock].a),
      b_to_todos: stats(samples[clock].b),
      total: stats(samples[clock].total),
    });
    const failedDeliveries = idp.log().split('\n').filter((line) => /failed/.test(line));

    const report = {
      measured_at: new Date().toISOString(),
      binary: APP_BIN,
      build,
      version,
      binary_built_at: builtAt,
      cpus: cpus().length,
      load_average_before_after: [loadBefore, loadavg().map((l) => Math.round(l * 100) / 100)],
      node: process.version,
      chromium: browser.version(),
      provider: 'e2e/idp/provider.mjs (oidc-provider 9, devInteractions login page)',
      runs: RUNS,
      warm_up_runs: WARM_UP,
      what: {
        a_to_provider_login: 'click "Continue with your organisation" on the app\'s sign-in page → the provider\'s login page loaded',
        b_to_todos: 'click the provider\'s "Sign-in" (login and password typed) → the app\'s todo list loaded',
        total: 'a + b (typing not included)',
        browser: 'the click event → the end of the load event of the page reached (browser clock)',
        wall: 'just before Playwright\'s click() → Playwright saw that load event (Node clock; adds Playwright\'s '
          + 'actionability checks before the click)',
      },
      browser: summary('browser'),
      wall: summary('wall'),
      requests_outside_127_0_0_1: external,
      samples_ms: {
        browser: { a_to_provider_login: samples.browser.a, b_to_todos: samples.browser.b, total: samples.browser.total },
        wall: { a_to_provider_login: samples.wall.a, b_to_todos: samples.wall.b, total: samples.wall.total },
      },
    };
    for (const [clock, parts] of [['browser', report.browser], ['wall', report.wall]]) {
      for (const [part, s] of Object.entries(parts)) {
        console.log(`${clock.padEnd(7)} ${part.padEnd(20)} median ${s.median_ms} ms, p90 ${s.p90_ms} ms, max ${s.max_ms} ms (min ${s.min_ms})`);
      }
    }
    if (failedDeliveries.length) console.log(`provider log: ${failedDeliveries.join('; ')}`);
    await writeReport('sso-login-bench', build, report);
  } finally {
    await browser?.close();
    await idp?.stop();
    await app.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
