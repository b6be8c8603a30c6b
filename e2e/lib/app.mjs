// Helpers for the browser tests: start ual-todo on a fresh database (and more instances on it),
// launch Debian's Chromium, sign in, take screenshots, send Universal Logout and watch pages being
// signed out live. Nothing here knows about a test framework.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where screenshots go (gitignored). */
export const ARTIFACTS_DIR = join(E2E_DIR, 'artifacts');

const BIN = resolve(E2E_DIR, process.env.UAL_TODO_BIN ?? '../target/debug/ual-todo');
/** The ual-todo binary the tests run (`UAL_TODO_BIN`, relative to e2e/, or the debug build). */
export const APP_BIN = BIN;
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const PG_HOST = '127.0.0.1';
const PG_USER = 'postgres';
const START_TIMEOUT_MS = 30_000;

/** The environment for the app: ours, minus settings that would point it elsewhere. */
function appEnv(databaseUrl, extra = {}) {
  // The e2e OpenID Provider runs on loopback over plain http: allowed only with this flag.
  const env = { ...process.env, DATABASE_URL: databaseUrl, RUST_LOG: process.env.RUST_LOG ?? 'info', ALLOW_INSECURE_IDP: 'true', ...extra };
  delete env.PUBLIC_URL; // the port is picked at start, so the app must build its own URL
  return env;
}

async function runJson(args, databaseUrl) {
  try {
    const { stdout } = await run(BIN, args, { env: appEnv(databaseUrl), timeout: START_TIMEOUT_MS });
    return JSON.parse(stdout);
  } catch (error) {
    throw new Error(`\`ual-todo ${args.join(' ')}\` failed: ${error.message}\n${error.stderr ?? ''}`);
  }
}

/** Runs `ual-todo ARGS --json` with `input` on its standard input; resolves with its JSON. */
async function runJsonWithInput(args, databaseUrl, input) {
  try {
    const running = run(BIN, args, { env: appEnv(databaseUrl), timeout: START_TIMEOUT_MS });
    running.child.stdin.end(input);
    const { stdout } = await running;
    return JSON.parse(stdout);
  } catch (error) {
    throw new Error(`\`ual-todo ${args.join(' ')}\` failed: ${error.message}\n${error.stderr ?? ''}`);
  }
}

async function dropDatabase(name) {
  await run('psql', ['-h', PG_HOST, '-U', PG_USER, '-v', 'ON_ERROR_STOP=1', '-q',
    '-c', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
}

/** Spawns `ual-todo serve` and resolves with its URL once it logs "serving at". */
function serve(databaseUrl) {
  const child = spawn(BIN, ['serve'], {
    env: appEnv(databaseUrl, { BIND: '127.0.0.1:0' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => fail(`did not say "serving at" within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    function fail(why) {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(new Error(`ual-todo serve ${why}. Its stderr:\n${stderr}`));
    }
    child.on('error', (error) => fail(`could not start (${BIN}): ${error.message}`));
    child.on('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      // eslint-disable-next-line no-control-regex
      const match = stderr.replace(/\x1b\[[0-9;]*m/g, '').match(/ual-todo is serving at (https?:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolveUrl(match[1].replace(/\/$/, ''));
      }
    });
  });
  return { child, url, stderr: () => stderr };
}

/** Stops a served instance: SIGTERM, then SIGKILL after 5 s. */
async function stopServer(server) {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    const exited = new Promise((done) => server.child.once('exit', done));
    server.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((done) => setTimeout(done, 5_000))]);
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  }
}

/**
 * Starts one more `ual-todo serve` on an existing database (another instance of the same app:
 * same sessions, same cookie key). Returns { url, serverLog(), stop() }.
 */
export async function startInstance(databaseUrl) {
  const server = serve(databaseUrl);
  const url = await server.url;
  return { url, serverLog: () => server.stderr(), stop: () => stopServer(server) };
}

/**
 * Starts ual-todo on a new database seeded with `demo`.
 * Returns { url, org, accounts, apiKey, databaseUrl, createUser(email, {admin}),
 * setIdp({issuer, clientId, clientSecret, emailDomain, createUsers}), startInstance(), serverLog(),
 * stop() };
 * `accounts` is keyed by the email's local part: accounts.alice = { email, password, admin };
 * `apiKey` is the org's Universal Logout key; `startInstance()` starts a second server on the
 * same database (stopped by `stop()` too).
 */
export async function startApp() {
  const dbName = `ual_todo_e2e_${randomBytes(6).toString('hex')}`;
  const databaseUrl = `postgres://${PG_USER}@${PG_HOST}:5432/${dbName}`;
  let server;
  const instances = [];
  const stop = async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await stopServer(server);
    await dropDatabase(dbName);
  };
  try {
    const demo = await runJson(['demo', '--json'], databaseUrl);
    const accounts = Object.fromEntries(demo.users.map((user) => [user.email.split('@')[0], user]));
    server = serve(databaseUrl);
    const url = await server.url;
    return {
      url,
      org: demo.org,
      accounts,
      apiKey: demo.api_key,
      databaseUrl,
      createUser: (email, { admin = false } = {}) =>
        runJson(['user', 'create', '--org', demo.org.slug, '--email', email, ...(admin ? ['--admin'] : []), '--json'], databaseUrl),
      /** `ual-todo org set-idp` for the demo org (the secret goes in on stdin). Resolves with its JSON. */
      setIdp: ({ issuer, clientId, clientSecret, emailDomain, createUsers = true }) => runJsonWithInput([
        'org', 'set-idp', demo.org.slug, '--issuer', issuer, '--client-id', clientId, '--client-secret-stdin',
        ...(emailDomain ? ['--email-domain', emailDomain] : []), ...(createUsers ? [] : ['--no-create-users']), '--json',
      ], databaseUrl, `${clientSecret}\n`),
      startInstance: async () => {
        const instance = await startInstance(databaseUrl);
        instances.push(instance);
        return instance;
      },
      serverLog: () => server.stderr(),
      stop,
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/**
 * Launches Debian's Chromium headless, with the flags this closed network needs (and `extraArgs`,
 * e.g. `LOCAL_ONLY_ARGS`).
 */
export function launchBrowser({ extraArgs = [] } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs,
    ],
  });
}

/**
 * Chromium flags that make every host name but 127.0.0.1 fail at once (for timings: the test
 * provider's pages ask for a web font from fonts.googleapis.com, which this network cannot reach).
 */
export const LOCAL_ONLY_ARGS = ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];

/** Signs in through the form and waits for the page it leads to. */
export async function login(page, url, email, password) {
  await page.goto(`${url}/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await submit(page, () => page.getByRole('button', { name: 'Sign in' }).click());
}

/** Runs `action` (a click or key press that submits a form) and waits for the page it leads to. */
export async function submit(page, action) {
  const navigated = page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame());
  await action();
  await navigated;
  await page.waitForLoadState('load');
}

/** Saves a full-page screenshot as artifacts/NAME.png and returns its path. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^a-z0-9-]+/gi, '-').toLowerCase()}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Universal Logout, as an identity provider sends it: ends every session of `email`.
 * Returns the fetch Response (204 when it worked).
 */
export function universalLogout(url, apiKey, email) {
  return fetch(`${url}/global-token-revocation`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub_id: { format: 'email', email } }),
  });
}

// A signed-in page's live stream runs in a SharedWorker, which Playwright does not show. A
// browser-level DevTools session can: it finds the worker (named `ual-todo-live-SESSION`) and
// asks it for the state of its EventSource.
const workerDebuggers = new WeakMap();

function workerDebugger(browser) {
  let debug = workerDebuggers.get(browser);
  if (!debug) {
    debug = (async () => {
      const cdp = await browser.newBrowserCDPSession();
      let lastId = 0;
      const pending = new Map();
      // Older, non-flat protocol: the only one a browser session can use on a worker target.
      cdp.on('Target.receivedMessageFromTarget', ({ sessionId, message }) => {
        const reply = JSON.parse(message);
        const waiting = pending.get(`${sessionId}:${reply.id}`);
        if (!waiting) return;
        pending.delete(`${sessionId}:${reply.id}`);
        if (reply.error) waiting.reject(new Error(`${reply.error.message} (${reply.error.code})`));
        else waiting.resolve(reply.result);
      });
      const sendTo = (sessionId, method, params) => new Promise((resolveReply, reject) => {
        const id = ++lastId;
        pending.set(`${sessionId}:${id}`, { resolve: resolveReply, reject });
        cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) })
          .catch((error) => { pending.delete(`${sessionId}:${id}`); reject(error); });
      });
      return {
        targets: async () => (await cdp.send('Target.getTargets')).targetInfos,
        /** Evaluates `expression` in a worker target and returns its value. */
        async evaluate(targetId, expression) {
          const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: false });
          try {
            const { result, exceptionDetails } = await Promise.race([
              sendTo(sessionId, 'Runtime.evaluate', { expression, returnByValue: true }),
              new Promise((_, reject) => setTimeout(() => reject(new Error('the worker did not answer')), 2_000)),
            ]);
            if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
            return result.value;
          } finally {
            await cdp.send('Target.detachFromTarget', { sessionId }).catch(() => {});
          }
        },
      };
    })();
    workerDebuggers.set(browser, debug);
  }
  return debug;
}

/**
 * Waits until the live-logout stream of `page`'s session is open (its SharedWorker's EventSource
 * has its response), so a logout from now on is delivered live rather than found at connection.
 * Returns the session id.
 */
export async function waitForLiveStream(page, { timeout = 10_000 } = {}) {
  const deadline = Date.now() + timeout;
  const session = await page.evaluate(() => document.body.dataset.session);
  if (!session) throw new Error(`${page.url()} is not a signed-in page (no data-session)`);
  const origin = new URL(page.url()).origin;
  const pageCdp = await page.context().newCDPSession(page);
  const { targetInfo } = await pageCdp.send('Target.getTargetInfo');
  await pageCdp.detach();
  const debug = await workerDebugger(page.context().browser());
  let state = 'no worker yet';
  while (Date.now() < deadline) {
    const worker = (await debug.targets()).find((t) => t.type === 'shared_worker'
      && t.browserContextId === targetInfo.browserContextId
      && t.title === `ual-todo-live-${session}` && t.url.startsWith(`${origin}/`));
    if (worker) {
      // live-worker.js keeps its EventSource in the top-level `source`.
      state = await debug.evaluate(worker.targetId,
        'typeof source === "undefined" ? "no `source` in live-worker.js" : source === null ? "not connected" : source.readyState')
        .catch((error) => `unreadable: ${error.message}`);
      if (state === 1) return session;
    }
    await new Promise((done) => setTimeout(done, 25));
  }
  throw new Error(`the live stream of session ${session} on ${origin} did not open within ${timeout} ms (last state: ${state})`);
}

/** What a page says when its session ended, by reason (the signed-out card and /login?reason=). */
export const REASON_TEXT = {
  ual: "You were signed out by your organisation's identity provider.",
  backchannel: "You were signed out because you signed out at your organisation's sign-in service.",
  admin: 'An administrator of your organisation signed you out.',
  self: 'You signed out on another device or tab.',
  revoked: 'You were signed out.',
  expired: 'Your session has ended.',
  signed_out: 'You signed out.',
};

const NOTICE_SELECTOR = 'main section.signed-out[role="alert"] p, main p.notice[role="status"]';

/**
 * The sentence for `reason` as a pattern: the whole text, or its start followed by more
 * sentences ("Your session has ended. Please sign in again."), so that `revoked` ("You were signed
 * out.") does not match the longer `ual` sentence.
 */
function noticePattern(reason) {
  const escaped = REASON_TEXT[reason].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped}(?: .+)?$`);
}

/** Where a page says why it was signed out: the live "Signed out" card, or the sign-in page. */
export function signedOutNotice(page, reason) {
  return page.locator(NOTICE_SELECTOR).filter({ hasText: noticePattern(reason) }).first();
}

/**
 * Waits until `page` says it was signed out for `reason`: on the live "Signed out" card, or on
 * the sign-in page it then moves to. Gives up at `deadline` (a Date.now() value). Resolves with
 * where the sentence was seen: 'card' or 'login'.
 *
 * Two watchers race: Playwright's locator (which survives the move to /login but polls every
 * 100 ms through DevTools, slower still on a busy machine) and a MutationObserver in the page
 * (which sees the card the moment it is inserted, but dies with the document).
 */
export async function waitForSignedOut(page, reason, { deadline = Date.now() + 5_000 } = {}) {
  const timeout = Math.max(1, deadline - Date.now());
  const byLocator = signedOutNotice(page, reason).waitFor({ state: 'visible', timeout });
  const inPage = page.evaluate(([selector, pattern, ms]) => new Promise((resolve, reject) => {
    const sentence = new RegExp(pattern);
    const said = () => [...document.querySelectorAll(selector)]
      .some((el) => sentence.test(el.textContent.trim()) && el.checkVisibility());
    if (said()) return resolve();
    const observer = new MutationObserver(() => {
      if (said()) { observer.disconnect(); resolve(); }
    });
    observer.observe(document.documentElement, { childList: true, subtree: true, characterData: true });
    setTimeout(() => { observer.disconnect(); reject(new Error('not in this document')); }, ms);
  }), [NOTICE_SELECTOR, noticePattern(reason).source, timeout]);
  try {
    await Promise.any([byLocator, inPage]);
  } catch (error) {
    throw error.errors?.[0] ?? error; // the locator's timeout says what it waited for
  } finally {
    byLocator.catch(() => {});
    inPage.catch(() => {});
  }
  return new URL(page.url()).pathname === '/login' ? 'login' : 'card';
}

/**
 * Records in the page (in sessionStorage, which outlives the move to /login) the Date.now() at
 * which the "Signed out" card appeared. Read it with `signedOutAt(page)`.
 */
export async function installSignedOutProbe(page) {
  await page.evaluate(() => {
    sessionStorage.removeItem('e2e-signed-out-at');
    const seen = () => {
      if (sessionStorage.getItem('e2e-signed-out-at') === null && document.querySelector('.signed-out')) {
        sessionStorage.setItem('e2e-signed-out-at', String(Date.now()));
      }
    };
    new MutationObserver(seen).observe(document.documentElement, { childList: true, subtree: true });
    seen();
  });
}

/** The Date.now() recorded by `installSignedOutProbe`, or null. */
export async function signedOutAt(page) {
  for (let attempt = 0; ; attempt++) {
    try {
      const at = await page.evaluate(() => sessionStorage.getItem('e2e-signed-out-at'));
      return at === null ? null : Number(at);
    } catch (error) {
      // The page was navigating; ask the next document.
      if (attempt >= 20) throw error;
      await page.waitForLoadState('load').catch(() => {});
    }
  }
}

/** Signs `user` in on a new page of `context` at `url`; resolves once its live stream is open. */
export async function signInTab(context, url, user) {
  const page = await context.newPage();
  await login(page, url, user.email, user.password);
  if (new URL(page.url()).pathname !== '/todos') throw new Error(`${user.email} could not sign in on ${url}: ${page.url()}`);
  await page.getByRole('heading', { name: 'Your todos' }).waitFor();
  await waitForLiveStream(page);
  return page;
}

/** Opens the todo list in a new tab of an already signed-in `context`, its live stream open. */
export async function openTodosTab(context, url) {
  const page = await context.newPage();
  await page.goto(`${url}/todos`);
  if (new URL(page.url()).pathname !== '/todos') throw new Error(`the new tab on ${url} is not signed in: ${page.url()}`);
  await page.getByRole('heading', { name: 'Your todos' }).waitFor();
  await waitForLiveStream(page);
  return page;
}

/**
 * Before a logout: checks no page (by label) says it is signed out yet, and installs the probe that
 * records when the "Signed out" card appears. (The check also readies Playwright's selector engine
 * in each page, so a timed wait afterwards measures the page, not that set-up.)
 */
export async function watchForSignOut(pages, reason) {
  for (const [label, page] of Object.entries(pages)) {
    if (await signedOutNotice(page, reason).count() !== 0) throw new Error(`${label} already says it is signed out`);
    await installSignedOutProbe(page);
  }
}

/**
 * Checks that every page (by label) said why it was signed out by `t0` + `withinMs`. Returns, per
 * page, when the test saw it (seenMs, where) and when the page showed its card (cardMs, from the
 * probe of `watchForSignOut`).
 */
export async function expectSignedOutWithin(pages, reason, t0, withinMs) {
  const entries = Object.entries(pages);
  const results = await Promise.allSettled(entries.map(async ([, page]) => {
    const where = await waitForSignedOut(page, reason, { deadline: t0 + withinMs });
    return { where, seenMs: Date.now() - t0 };
  }));
  const seen = [];
  const late = [];
  for (const [i, [label, page]] of entries.entries()) {
    const at = await signedOutAt(page).catch(() => null);
    const cardMs = at === null ? null : at - t0;
    if (results[i].status === 'rejected') {
      late.push(`${label} (now ${page.url()}; its card ${cardMs === null ? 'never appeared' : `appeared after ${cardMs} ms`})`);
    } else {
      seen.push({ label, cardMs, ...results[i].value });
    }
  }
  if (late.length) throw new Error(`not told "${REASON_TEXT[reason]}" within ${withinMs} ms: ${late.join('; ')}`);
  return seen;
}

/** "tab 1: card 35 ms, seen 80 ms (card); …" for a test's diagnostics. */
export const describeSignOuts = (seen) =>
  seen.map((s) => `${s.label}: card ${s.cardMs ?? '—'} ms, seen ${s.seenMs} ms (${s.where})`).join('; ');

function expectEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/**
 * Checks that `page` moved to the sign-in page for `reason` (it does ~800 ms after its card),
 * saying why, with neither the todo list nor the account menu.
 */
export async function expectOnSignInPage(page, reason, label) {
  await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('reason') === reason, { timeout: 5_000 });
  await page.waitForLoadState('load');
  expectEqual(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign in', `${label}: the heading`);
  expectEqual(await page.locator('p.notice[role="status"]').innerText(), REASON_TEXT[reason], `${label}: the notice`);
  expectEqual(await page.getByRole('heading', { name: 'Your todos' }).count(), 0, `${label}: todo lists shown`);
  expectEqual(await page.locator('nav.account').count(), 0, `${label}: account menus shown`);
}

/**
 * Checks that `page` is still on its todo list with no "Signed out" card, then reloads it: still
 * the list, still signed in as `email`.
 */
export async function expectStillSignedIn(page, email, label) {
  expectEqual(new URL(page.url()).pathname, '/todos', `${label}: the page`);
  expectEqual(await page.locator('.signed-out').count(), 0, `${label}: "Signed out" cards`);
  await page.reload();
  expectEqual(new URL(page.url()).pathname, '/todos', `${label}: the page after a reload`);
  await page.getByRole('heading', { name: 'Your todos' }).waitFor({ timeout: 2_000 });
  expectEqual(await page.locator('nav.account .who').innerText(), email, `${label}: signed in as`);
}

// --- Single sign-on: the test OpenID Provider (e2e/idp) and its pages --------------------------

const IDP_SCRIPT = join(E2E_DIR, 'idp', 'provider.mjs');

/**
 * Starts the test OpenID Provider (e2e/idp/provider.mjs) with `config` (its IDP_CONFIG: port,
 * clients, accounts) and resolves once it printed its issuer. Returns { issuer, log(), stop() };
 * `log()` is its stderr (where failed back-channel deliveries show up).
 */
export async function startIdp(config) {
  const child = spawn(process.execPath, [IDP_SCRIPT], {
    env: { ...process.env, IDP_CONFIG: JSON.stringify({ port: 0, ...config }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const stop = () => stopServer({ child });
  try {
    const issuer = await new Promise((resolveIssuer, reject) => {
      let stdout = '';
      const timer = setTimeout(() => fail(`did not print its issuer within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
      function fail(why) {
        clearTimeout(timer);
        reject(new Error(`the test OpenID Provider ${why}. Its stderr:\n${stderr}`));
      }
      child.on('error', (error) => fail(`could not start (${IDP_SCRIPT}): ${error.message}`));
      child.on('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        const newline = stdout.indexOf('\n');
        if (newline === -1) return;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        try {
          resolveIssuer(JSON.parse(stdout.slice(0, newline)).issuer);
        } catch (error) {
          fail(`printed ${JSON.stringify(stdout.slice(0, newline))} (${error.message})`);
        }
      });
    });
    return { issuer, log: () => stderr, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Sets up single sign-on for `app`'s demo org: starts the test OpenID Provider with one client for
 * `app` (its callback, its sign-in page after logout, its back-channel logout URI) and `accounts`
 * (login → claims), then `ual-todo org set-idp` with that issuer (work emails at `emailDomain`,
 * by default the demo users' domain, sign in through it). Returns
 * { issuer, clientId, log(), stop() } (the provider).
 */
export async function startOrgIdp(app, {
  accounts = {}, clientId = 'acme-app', clientSecret = `secret-${randomBytes(12).toString('hex')}`,
  emailDomain = app.accounts.alice?.email.split('@')[1], // the demo's users are at acme.test
} = {}) {
  const idp = await startIdp({
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [`${app.url}/auth/oidc/callback`],
      post_logout_redirect_uris: [`${app.url}/login`],
      backchannel_logout_uri: `${app.url}/backchannel-logout`,
    }],
    accounts,
  });
  try {
    await app.setIdp({ issuer: idp.issuer, clientId, clientSecret, emailDomain });
  } catch (error) {
    await idp.stop();
    throw error;
  }
  return { ...idp, clientId };
}

/** The single sign-on form of the app's sign-in page. */
export const ssoForm = (page) => ({
  input: page.getByLabel('Work email or organisation ID'),
  button: page.getByRole('button', { name: 'Continue with your organisation' }),
});

/**
 * On the app's sign-in page, types `orgOrEmail` into the SSO form and clicks "Continue with your
 * organisation"; waits for the page it leads to (the provider's login page, or straight back to
 * the app when the provider still has a session).
 */
export async function startSso(page, url, orgOrEmail) {
  await page.goto(`${url}/login`);
  const form = ssoForm(page);
  await form.input.fill(orgOrEmail);
  await submit(page, () => form.button.click());
}

/** Whether `page` is the test provider's login page (oidc-provider's dev interaction page). */
export async function isProviderLoginPage(page, issuer) {
  const u = new URL(page.url());
  return u.origin === issuer && /^\/interaction\/[^/]+$/.test(u.pathname)
    && await page.locator('form input[name=login]').count() === 1;
}

/** On the provider's login page, signs in as `login` (any password) and waits for the page it leads to. */
export async function signInAtProvider(page, login, password = `any-${randomBytes(4).toString('hex')}`) {
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill(password);
  await submit(page, () => page.getByRole('button', { name: 'Sign-in' }).click());
}
