// Probes of live logout in the browser: whether a page's live stream is open (through DevTools,
// since it runs in a SharedWorker), when and how a page says it was signed out, and the checks
// the tests make of both.

import { login } from './browser.mjs';

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
  self_device: 'You signed out this device from another one.',
  revoked: 'You were signed out.',
  expired: 'Your session has ended.',
  signed_out: 'You signed out.',
  suspended: 'Your account was suspended by your organisation.',
  caep: "You were signed out by your organisation's security signals.",
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
