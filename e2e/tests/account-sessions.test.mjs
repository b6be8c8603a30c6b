// `/account/sessions` as a person uses it (issue 14): from one browser they see their other
// sessions and sign one out, and that browser's open tab goes to the sign-in page at once,
// saying why; a sign-in from a new device appears on the page live and is announced to the
// other tabs.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  LOCAL_ONLY_ARGS, isProviderLoginPage, launchBrowser, login, screenshot, signInAtProvider, signInTab,
  startOrgIdp, startSso, submit, waitForLiveStream, waitForSignedOut,
} from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 '
  + '(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

const env = useAppAndBrowser();
const sessionsTest = (name, fn) => deviceTest(env, name, fn);
const newUser = (label) => env.app.createUser(`${label}-${randomBytes(3).toString('hex')}@acme.test`);
const path = (page) => new URL(page.url()).pathname;

/** A browser that presents itself with `userAgent` (closed with the test's own contexts). */
async function deviceAs(contexts, userAgent) {
  const context = await env.browser.newContext({ viewport: DESKTOP, userAgent });
  contexts.push(context);
  return context;
}

/** Opens the sessions page in a new tab of `context` (signing in first when `user` is given). */
async function openSessions(context, user) {
  const page = await context.newPage();
  if (user) await login(page, env.app.url, user.email, user.password);
  await page.goto(`${env.app.url}/account/sessions`);
  assert.equal(path(page), '/account/sessions');
  await waitForLiveStream(page);
  return page;
}

const rows = (page) => page.locator('#session-list > li');

sessionsTest('a user signs out another of their browsers from the sessions page: its tab shows the sign-in page live', async ({ t, device }) => {
  const user = await newUser('lost-phone');
  const laptop = await device();
  const lostTab = await signInTab(laptop, env.app.url, user);
  const phone = await device();
  const page = await openSessions(phone, user);

  assert.equal(await rows(page).count(), 2);
  const current = page.locator('#session-list > li.current');
  assert.match(await current.innerText(), /This device/);
  const other = page.locator('#session-list > li:not(.current)');
  const t0 = Date.now();
  await submit(page, () => other.getByRole('button', { name: /^Sign out Headless Chrome on Linux/ }).click());

  const where = await waitForSignedOut(lostTab, 'self_device', { deadline: t0 + 2_000 });
  t.diagnostic(`the ended tab said so ${Date.now() - t0} ms after the click (on the ${where})`);
  await lostTab.waitForURL(/\/login\?reason=self_device$/, { timeout: 5_000 });
  assert.match(await lostTab.locator('main').innerText(), /You signed out this device from another one\./);
  await lostTab.goto(`${env.app.url}/todos`);
  assert.equal(path(lostTab), '/login', 'the ended session is gone');

  assert.equal(path(page), '/account/sessions');
  assert.equal(await page.locator('.flash').innerText(), 'That session is signed out.');
  assert.equal(await rows(page).count(), 1, 'only this device is left');
});

sessionsTest('a sign-in from a new device appears on the page live, and other tabs are told', async ({ device }) => {
  const contexts = [];
  try {
    const user = await newUser('watchful');
    const laptop = await device();
    const todos = await signInTab(laptop, env.app.url, user);
    const page = await openSessions(laptop);
    await page.evaluate(() => { window.__marker = 1; }); // gone if the page reloads
    assert.equal(await rows(page).count(), 1);

    const stranger = await deviceAs(contexts, FIREFOX_WINDOWS);
    const strangerTab = await stranger.newPage();
    await login(strangerTab, env.app.url, user.email, user.password);

    await rows(page).nth(1).waitFor({ timeout: 3_000 });
    assert.equal(await rows(page).count(), 2, 'the new session is listed without a reload');
    const newRow = page.locator('#session-list > li', { hasText: 'Firefox on Windows' });
    assert.match(await newRow.innerText(), /New device/);
    assert.ok(await page.evaluate(() => window.__marker === 1), 'the page was not reloaded');
    const notice = todos.locator('p.notice.new-sign-in[role="status"]');
    await notice.waitFor({ timeout: 3_000 });
    assert.equal(await notice.innerText(), 'New sign-in from Firefox on Windows. Review your sessions');
    assert.equal(await notice.getByRole('link').getAttribute('href'), '/account/sessions');
    assert.equal(path(todos), '/todos', 'the notice does not take the tab anywhere');

    // Ended elsewhere (here, signing out on that device): it disappears from the list.
    await submit(strangerTab, () => strangerTab.getByRole('button', { name: 'Sign out' }).first().click());
    await page.locator('#session-list > li', { hasText: 'Firefox on Windows' }).waitFor({ state: 'detached', timeout: 3_000 });
    assert.equal(await rows(page).count(), 1);
  } finally {
    for (const context of contexts) await context.close().catch(() => {});
  }
});

sessionsTest('screenshots: the sessions page on a desktop and a phone', async ({ device }) => {
  const contexts = [];
  try {
    const user = await newUser('screenshots');
    const tokens = await (await device()).newPage();
    await login(tokens, env.app.url, user.email, user.password);
    await tokens.goto(`${env.app.url}/settings/tokens`);
    await tokens.fill('#name', 'backup script');
    await submit(tokens, () => tokens.getByRole('button', { name: 'Create token' }).click());
    for (const userAgent of [SAFARI_IPHONE, FIREFOX_WINDOWS]) {
      const other = await (await deviceAs(contexts, userAgent)).newPage();
      await login(other, env.app.url, user.email, user.password);
    }
    const page = await openSessions(tokens.context());
    assert.equal(await rows(page).count(), 3);
    assert.equal(await page.getByLabel('Your password').count(), 1);

    await page.setViewportSize(DESKTOP);
    await screenshot(page, 'account-sessions-desktop');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'account-sessions-phone');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at phone width`);
  } finally {
    for (const context of contexts) await context.close().catch(() => {});
  }
});

// Last: it sets up single sign-on for the demo org, after which its other users sign in through it.
sessionsTest('an SSO user confirms at the IdP before every other session is signed out; the other tab shows the sign-in page live', async ({ t }) => {
  const email = `sso-${randomBytes(3).toString('hex')}@acme.test`;
  const idp = await startOrgIdp(env.app, { accounts: { [email]: { sub: `00u-${email}`, email, email_verified: true } } });
  // The provider's pages ask for a web font this network cannot reach.
  const browser = await launchBrowser({ extraArgs: LOCAL_ONLY_ARGS });
  try {
    const tabs = [];
    for (let i = 0; i < 2; i++) {
      const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
      await startSso(page, env.app.url, email);
      assert.ok(await isProviderLoginPage(page, idp.issuer), page.url());
      await signInAtProvider(page, email);
      assert.equal(path(page), '/todos');
      tabs.push(page);
    }
    const [laptop, phone] = tabs;
    await waitForLiveStream(laptop);
    await phone.goto(`${env.app.url}/account/sessions`);
    assert.match(await rows(phone).first().innerText(), /Single sign-on \(127\.0\.0\.1\)/);
    assert.equal(await phone.getByLabel('Your password').count(), 0, 'no password to type: the IdP confirms');

    await submit(phone, () => phone.getByRole('button', { name: 'Sign out all other sessions' }).click());
    assert.ok(await isProviderLoginPage(phone, idp.issuer), `a fresh login at the provider, not ${phone.url()}`);
    assert.equal(path(laptop), '/todos', 'nothing ends before the IdP confirms');
    const t0 = Date.now();
    await signInAtProvider(phone, email);

    assert.equal(path(phone), '/account/sessions');
    assert.equal(await phone.locator('.flash').innerText(), 'Your other session is signed out.');
    const where = await waitForSignedOut(laptop, 'self_device', { deadline: t0 + 5_000 });
    t.diagnostic(`the other tab said so ${Date.now() - t0} ms after confirming at the provider (on the ${where})`);
    await waitForLiveStream(phone);
    assert.equal(await rows(phone).count(), 1);
  } finally {
    await browser.close().catch(() => {});
    await idp.stop();
  }
});
