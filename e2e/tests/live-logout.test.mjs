// Live logout, as the signed-in person sees it: open tabs and other devices leave their private
// pages the moment their session ends, whichever instance ended it, and never show them again.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  REASON_TEXT, describeSignOuts, expectOnSignInPage, expectSignedOutWithin as signedOutWithin,
  expectStillSignedIn, installSignedOutProbe, openTodosTab, screenshot,
  signInTab, signedOutAt, submit, universalLogout, waitForLiveStream,
  waitForSignedOut, watchForSignOut,
} from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

/** How soon after the Universal Logout request every open page must say it was signed out. */
const LIVE_WITHIN_MS = 1_000;
const expectSignedOutWithin = (pages, reason, t0) => signedOutWithin(pages, reason, t0, LIVE_WITHIN_MS);

const env = useAppAndBrowser();
/** A test with its browser contexts ("devices"); a failure keeps screenshots and server logs. */
const liveTest = (name, fn) => deviceTest(env, name, fn);

const path = (page) => new URL(page.url()).pathname;
const newUser = (label) => env.app.createUser(`${label}-${randomBytes(3).toString('hex')}@acme.test`);
const todosHeading = (page) => page.getByRole('heading', { name: 'Your todos' });

/** Waits until a server log says its instance listens for revocations from the database. */
async function waitForListening(log, { timeout = 10_000 } = {}) {
  const deadline = Date.now() + timeout;
  while (!/listening for revocations/.test(log())) {
    if (Date.now() > deadline) assert.fail('the instance never logged "listening for revocations"');
    await new Promise((done) => setTimeout(done, 50));
  }
}

liveTest('Universal Logout signs a user out of two tabs and another device within a second', async ({ t, device }) => {
  const alice = env.app.accounts.alice;
  const laptop = await device();
  const tab1 = await signInTab(laptop, env.app.url, alice);
  const tab2 = await openTodosTab(laptop, env.app.url);
  const phone = await device();
  const onPhone = await signInTab(phone, env.app.url, alice);
  const sessions = await Promise.all([tab1, tab2, onPhone].map((p) => p.evaluate(() => document.body.dataset.session)));
  assert.equal(sessions[0], sessions[1], 'the two tabs share a session');
  assert.notEqual(sessions[0], sessions[2], 'the phone has a session of its own');

  const pages = { 'tab 1': tab1, 'tab 2': tab2, phone: onPhone };
  await watchForSignOut(pages, 'ual');

  const t0 = Date.now();
  const told = expectSignedOutWithin(pages, 'ual', t0); // polls from now until t0 + 1 s
  told.catch(() => {}); // awaited below
  const response = await universalLogout(env.app.url, env.app.apiKey, alice.email);
  const answeredIn = Date.now() - t0;
  assert.equal(response.status, 204, await response.text());
  const seen = await told;
  for (const { label, cardMs } of seen) assert.ok(cardMs !== null, `${label} showed the "Signed out" card`);
  for (const [label, page] of Object.entries(pages)) await expectOnSignInPage(page, 'ual', label);
  t.diagnostic(`204 after ${answeredIn} ms; ${describeSignOuts(seen)}`);

  // The ended sessions stay ended.
  await tab1.goto(`${env.app.url}/todos`);
  assert.equal(path(tab1), '/login');
  await onPhone.goto(`${env.app.url}/todos`);
  assert.equal(path(onPhone), '/login');
});

liveTest('a tab on instance B is signed out live by Universal Logout sent to instance A', async ({ t, device, logs }) => {
  const user = await newUser('two-instances');
  const b = await env.app.startInstance();
  logs.push(() => b.serverLog());
  try {
    assert.notEqual(new URL(b.url).port, new URL(env.app.url).port);
    await waitForListening(() => b.serverLog());
    const context = await device();
    const onB = await signInTab(context, b.url, user);
    const onA = await openTodosTab(context, env.app.url); // the same cookie: instances share sessions
    const pages = { 'the tab on B': onB, 'the tab on A': onA };
    await watchForSignOut(pages, 'ual');

    const t0 = Date.now();
    const told = expectSignedOutWithin(pages, 'ual', t0);
    told.catch(() => {}); // awaited below
    const response = await universalLogout(env.app.url, env.app.apiKey, user.email);
    assert.equal(response.status, 204, await response.text());
    const seen = await told;
    await expectOnSignInPage(onB, 'ual', 'the tab on B');
    assert.equal(new URL(onB.url()).origin, b.url, 'the tab on B stayed on B');
    await expectOnSignInPage(onA, 'ual', 'the tab on A');
    t.diagnostic(describeSignOuts(seen));
  } finally {
    await b.stop();
  }
});

liveTest('after a forced logout, Back and Reload never show the todos again', async ({ device }) => {
  const user = await newUser('back-button');
  const context = await device();
  const page = await signInTab(context, env.app.url, user);
  const title = `Secret plan ${randomBytes(3).toString('hex')}`;
  await page.getByLabel('New todo').fill(title);
  await submit(page, () => page.getByRole('button', { name: 'Add', exact: true }).click());
  // History: … /todos, /settings/tokens, /todos.
  await submit(page, () => page.locator('nav.account').getByRole('link', { name: 'API tokens' }).click());
  assert.equal(path(page), '/settings/tokens');
  await submit(page, () => page.locator('nav.account').getByRole('link', { name: 'Todos' }).click());
  assert.equal(path(page), '/todos');
  await page.getByText(title).waitFor();
  await waitForLiveStream(page);

  const response = await universalLogout(env.app.url, env.app.apiKey, user.email);
  assert.equal(response.status, 204);
  await page.locator('.signed-out').waitFor({ timeout: 2_000 });
  assert.equal(await page.locator('.signed-out h1').innerText(), 'Signed out');
  assert.equal(await page.locator('.signed-out p').innerText(), REASON_TEXT.ual);
  assert.equal(await page.getByText(title).count(), 0, 'the card replaces the list at once');
  assert.equal(await page.locator('nav.account').count(), 0, 'the account menu is gone');
  assert.equal(await page.title(), 'Signed out · ual-todo');
  await screenshot(page, 'signed-out-card');
  await page.setViewportSize(PHONE);
  await screenshot(page, 'signed-out-card-phone').catch(() => {}); // the page may be leaving already
  await page.setViewportSize(DESKTOP);
  await expectOnSignInPage(page, 'ual', 'the tab');
  await screenshot(page, 'signed-out-login-ual');

  const neverTheTodos = async (what) => {
    await page.waitForLoadState('load');
    assert.match(path(page), /^\/login/, `${what}: ${page.url()}`);
    assert.equal(await todosHeading(page).count(), 0, `${what}: no todo list`);
    assert.equal(await page.getByText(title).count(), 0, `${what}: the todo is not shown`);
    assert.equal(await page.locator('nav.account').count(), 0, `${what}: nobody is signed in`);
  };
  await page.reload();
  await neverTheTodos('Reload');
  for (let i = 1; i <= 3; i++) {
    const moved = await page.goBack();
    if (!moved) break; // the start of the history
    await neverTheTodos(`Back ×${i}`);
    await page.reload();
    await neverTheTodos(`Back ×${i}, then Reload`);
  }
  await page.goForward();
  await neverTheTodos('Forward');
});

liveTest("Sign out ends only this session: the same browser's other tab follows, the other device stays", async ({ t, device }) => {
  const user = await newUser('sign-out');
  const laptop = await device();
  const tab1 = await signInTab(laptop, env.app.url, user);
  const tab2 = await openTodosTab(laptop, env.app.url);
  const phone = await device();
  const onPhone = await signInTab(phone, env.app.url, user);
  await watchForSignOut({ 'the other tab': tab2 }, 'self');
  await installSignedOutProbe(onPhone);
  await installSignedOutProbe(tab1);

  await tab1.bringToFront(); // the person looks at the first tab (a background tab does not paint)
  const t0 = Date.now();
  const otherTab = expectSignedOutWithin({ 'the other tab': tab2 }, 'self', t0);
  otherTab.catch(() => {}); // awaited below
  await tab1.getByRole('button', { name: 'Sign out' }).click();
  const clicked = Date.now() - t0;
  await tab1.waitForURL('**/login?reason=signed_out');
  t.diagnostic(`click done after ${clicked} ms; ${describeSignOuts(await otherTab)}`);
  await expectOnSignInPage(tab2, 'self', 'the other tab');
  await tab1.waitForLoadState('load');
  assert.equal(path(tab1), '/login', 'the tab that signed out');
  assert.equal(new URL(tab1.url()).searchParams.get('reason'), 'signed_out', 'the tab that signed out');
  assert.equal(await tab1.locator('p.notice[role="status"]').innerText(), REASON_TEXT.signed_out);
  // Known glitch (reported, not failed): the tab that signed out hears its own `self` logout and
  // shows "You signed out on another device or tab." until its own navigation replaces it.
  const ownCard = await signedOutAt(tab1);
  if (ownCard !== null) t.diagnostic(`the tab that clicked Sign out showed the "${REASON_TEXT.self}" card after ${ownCard - t0} ms`);

  // Give a wrongly addressed logout time to arrive, then check the phone is untouched.
  await onPhone.waitForTimeout(LIVE_WITHIN_MS);
  assert.equal(await signedOutAt(onPhone), null, 'the phone never showed the "Signed out" card');
  await expectStillSignedIn(onPhone, user.email, 'the phone');
  await waitForLiveStream(onPhone);

  // And its session still ends live later.
  const response = await universalLogout(env.app.url, env.app.apiKey, user.email);
  assert.equal(response.status, 204);
  await waitForSignedOut(onPhone, 'ual');
});
