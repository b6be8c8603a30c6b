// The admin dashboard, live: an administrator watches sessions end and begin without reloading,
// and ends them with its buttons.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  describeSignOuts, expectOnSignInPage, expectSignedOutWithin, expectStillSignedIn,
  installSignedOutProbe, login, screenshot, signInTab, signedOutAt, submit,
  universalLogout, waitForSignedOut, watchForSignOut,
} from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

/** How soon a signed-in user's pages must say they were signed out. */
const LIVE_WITHIN_MS = 1_000;
/** How soon the dashboard must show an event. */
const DASHBOARD_WITHIN_MS = 2_000;

const env = useAppAndBrowser();
/** A test with its browser contexts ("devices"); a failure keeps screenshots and the server log. */
const adminTest = (name, fn) => deviceTest(env, name, fn);

const path = (page) => new URL(page.url()).pathname;
/** A new user of the demo org, so each test sees only its own sessions in that user's row. */
const newUser = (label) => env.app.createUser(`${label}-${randomBytes(3).toString('hex')}@acme.test`);
const sessionOf = (page) => page.evaluate(() => document.body.dataset.session);

/**
 * Opens the dashboard in a new tab of `context`, signing the admin in first on its first tab;
 * resolves once the dashboard's live stream is on.
 */
async function openDashboard(context) {
  const page = await context.newPage();
  if (context.pages().length === 1) {
    await login(page, env.app.url, env.app.accounts.admin.email, env.app.accounts.admin.password);
  }
  await page.goto(`${env.app.url}/admin`);
  assert.equal(path(page), '/admin');
  await page.locator('#live-status', { hasText: 'Live updates: on' }).waitFor({ timeout: 5_000 });
  // Survives only as long as this document: a reload or navigation would drop it.
  await page.evaluate(() => { window.__marker = 1; });
  return page;
}

const notReloaded = async (page) => page.evaluate(() => window.__marker === 1);

/** The dashboard's view of one user. */
function rowOf(page, email) {
  const row = page.locator(`tbody tr[data-email="${email}"]`);
  return {
    row,
    count: () => row.locator('.session-count').innerText(),
    sessions: row.locator('ul.sessions li[data-session-id]'),
    session: (id) => row.locator(`ul.sessions li[data-session-id="${id}"]`),
    status: () => row.locator('.status').innerText(),
    classes: async () => (await row.getAttribute('class')) ?? '',
  };
}

const orgSessionCount = async (page) => Number(await page.locator('#session-count').innerText());
const firstFeedEntry = (page) => page.locator('ol#feed > li').first();

/** Waits until the row's session count reads `n`. */
async function waitForCount(page, email, n, timeout = DASHBOARD_WITHIN_MS) {
  await page.locator(`tbody tr[data-email="${email}"] .session-count`, { hasText: new RegExp(`^${n}$`) })
    .waitFor({ timeout });
}

adminTest('the dashboard shows a Universal Logout live: row, count, highlight and feed, without a reload', async ({ t, device }) => {
  const user = await newUser('alice-ual');
  const laptop = await signInTab(await device(), env.app.url, user);
  const phone = await signInTab(await device(), env.app.url, user);
  const dashboard = await openDashboard(await device());
  const row = rowOf(dashboard, user.email);
  assert.equal(await row.count(), '2');
  assert.equal(await row.sessions.count(), 2);
  assert.equal(await row.status(), 'Signed in');
  assert.equal(await row.session(await sessionOf(laptop)).count(), 1, "the laptop's session is listed");
  assert.equal(await row.session(await sessionOf(phone)).count(), 1, "the phone's session is listed");
  const totalBefore = await orgSessionCount(dashboard);
  const feedBefore = await dashboard.locator('ol#feed > li').count();
  await watchForSignOut({ laptop, phone }, 'ual');

  const t0 = Date.now();
  const response = await universalLogout(env.app.url, env.app.apiKey, user.email);
  assert.equal(response.status, 204);
  await waitForCount(dashboard, user.email, 0);
  await screenshot(dashboard, 'admin-dashboard-mid-revocation');

  assert.match(await row.classes(), /\bjust-revoked\b/, 'the row is highlighted');
  assert.equal(await row.status(), 'Signed out by Universal Logout just now');
  assert.equal(await row.sessions.count(), 0, 'the session list is empty');
  assert.equal(await row.row.locator('.session-count').getAttribute('aria-label'), '0 active sessions');
  assert.equal(await orgSessionCount(dashboard), totalBefore - 2, 'the org total dropped by two');
  const entry = firstFeedEntry(dashboard);
  assert.match(await entry.getAttribute('class'), /\bfresh\b/);
  const text = await entry.innerText();
  assert.match(text, new RegExp(`${user.email.replace(/[.]/g, '\\.')} signed out by Universal Logout`), text);
  assert.match(text, /; 2 sessions ended\)/, text);
  assert.match(text, /^\d{4}-\d\d-\d\d \d\d:\d\d UTC /, text);
  assert.equal(await dashboard.locator('ol#feed > li').count(), feedBefore + 1, 'one new feed entry');
  assert.equal(await dashboard.locator('#feed-empty').isHidden(), true, '"No sign-outs yet." is hidden');
  assert.ok(await notReloaded(dashboard), 'the dashboard changed without reloading');
  assert.equal(await dashboard.locator('#live-status').innerText(), 'Live updates: on');

  // The user's pages were told too.
  await expectSignedOutWithin({ laptop, phone }, 'ual', t0, LIVE_WITHIN_MS);
  await dashboard.setViewportSize(PHONE);
  await screenshot(dashboard, 'admin-dashboard-revoked-phone');
  const overflow = await dashboard.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await dashboard.setViewportSize(DESKTOP);

  // A reload shows the same, from the database.
  await dashboard.reload();
  await dashboard.locator('#live-status', { hasText: 'Live updates: on' }).waitFor();
  assert.equal(await row.count(), '0');
  assert.equal(await row.status(), 'Signed out');
  assert.match(await firstFeedEntry(dashboard).innerText(), new RegExp(`${user.email.replace(/[.]/g, '\\.')} signed out by Universal Logout`));
  if (overflow > 0) t.diagnostic(`layout: the dashboard scrolls sideways by ${overflow}px at phone width (reported, not failed)`);
});

adminTest('"Log out everywhere" signs every device out (reason: admin) and updates the dashboards', async ({ t, device }) => {
  const user = await newUser('alice-everywhere');
  const laptop = await signInTab(await device(), env.app.url, user);
  const phone = await signInTab(await device(), env.app.url, user);
  const adminBrowser = await device();
  const dashboard = await openDashboard(adminBrowser);
  const watcher = await openDashboard(adminBrowser); // a second dashboard tab, only watching
  assert.equal(await rowOf(dashboard, user.email).count(), '2');
  await watchForSignOut({ laptop, phone }, 'admin');

  await dashboard.bringToFront();
  const button = dashboard.getByRole('button', { name: `Log ${user.email} out everywhere` });
  assert.equal(await button.innerText(), 'Log out everywhere');
  const t0 = Date.now();
  const told = expectSignedOutWithin({ laptop, phone }, 'admin', t0, LIVE_WITHIN_MS);
  told.catch(() => {}); // awaited below
  await submit(dashboard, () => button.click());
  t.diagnostic(describeSignOuts(await told));

  // The acting dashboard: back on /admin with a message.
  assert.equal(path(dashboard), '/admin');
  assert.equal(await dashboard.locator('.flash').innerText(),
    `Signed ${user.email} out everywhere: 2 sessions ended, 0 tokens revoked.`);
  const row = rowOf(dashboard, user.email);
  assert.equal(await row.count(), '0');
  assert.equal(await row.sessions.count(), 0);
  assert.equal(await row.status(), 'Signed out');
  const entry = await firstFeedEntry(dashboard).innerText();
  assert.match(entry, new RegExp(`${user.email.replace(/[.]/g, '\\.')} signed out by an administrator`), entry);
  assert.match(entry, /\(admin admin@acme\.test; 2 sessions ended\)/, entry);

  // The watching dashboard: live.
  await waitForCount(watcher, user.email, 0);
  const live = rowOf(watcher, user.email);
  assert.equal(await live.status(), 'Signed out by an administrator just now');
  assert.match(await live.classes(), /\bjust-revoked\b/);
  assert.equal(await live.sessions.count(), 0);
  const fresh = firstFeedEntry(watcher);
  assert.match(await fresh.getAttribute('class'), /\bfresh\b/);
  assert.match(await fresh.innerText(), /signed out by an administrator \(admin admin@acme\.test; 2 sessions ended\)/);
  assert.ok(await notReloaded(watcher), 'the watching dashboard did not reload');

  for (const [label, page] of Object.entries({ laptop, phone })) await expectOnSignInPage(page, 'admin', label);
});

adminTest('"End session" ends one device only (reason: admin); the other stays signed in', async ({ t, device }) => {
  const user = await newUser('alice-one-session');
  const laptop = await signInTab(await device(), env.app.url, user);
  const phone = await signInTab(await device(), env.app.url, user);
  const [laptopSession, phoneSession] = [await sessionOf(laptop), await sessionOf(phone)];
  const adminBrowser = await device();
  const dashboard = await openDashboard(adminBrowser);
  const watcher = await openDashboard(adminBrowser);
  await watchForSignOut({ laptop }, 'admin');
  await installSignedOutProbe(phone);

  await dashboard.bringToFront();
  const item = rowOf(dashboard, user.email).session(laptopSession);
  const button = item.locator('button', { hasText: 'End session' });
  assert.match(await button.getAttribute('aria-label'), new RegExp(`^End the .+ session of ${user.email.replace(/[.]/g, '\\.')}$`));
  const t0 = Date.now();
  const told = expectSignedOutWithin({ laptop }, 'admin', t0, LIVE_WITHIN_MS);
  told.catch(() => {}); // awaited below
  await submit(dashboard, () => button.click());
  t.diagnostic(describeSignOuts(await told));

  assert.equal(path(dashboard), '/admin');
  assert.equal(await dashboard.locator('.flash').innerText(), 'Session ended.');
  const row = rowOf(dashboard, user.email);
  assert.equal(await row.count(), '1');
  assert.equal(await row.session(laptopSession).count(), 0, "the laptop's session is gone");
  assert.equal(await row.session(phoneSession).count(), 1, "the phone's session is listed");
  assert.equal(await row.status(), 'Signed in');
  assert.match(await firstFeedEntry(dashboard).innerText(), /signed out by an administrator \(admin admin@acme\.test; 1 session ended\)/);

  await waitForCount(watcher, user.email, 1);
  const live = rowOf(watcher, user.email);
  assert.equal(await live.session(laptopSession).count(), 0);
  assert.equal(await live.session(phoneSession).count(), 1);
  assert.equal(await live.status(), 'Session ended by an administrator just now');
  assert.match(await live.classes(), /\bjust-revoked\b/);
  assert.match(await firstFeedEntry(watcher).innerText(), /signed out by an administrator \(admin admin@acme\.test; 1 session ended\)/);
  assert.ok(await notReloaded(watcher), 'the watching dashboard did not reload');

  await expectOnSignInPage(laptop, 'admin', 'the laptop');
  // Leave a wrongly addressed logout time to reach the phone, then check it is untouched.
  await phone.waitForTimeout(LIVE_WITHIN_MS);
  assert.equal(await signedOutAt(phone), null, 'the phone never showed the "Signed out" card');
  await expectStillSignedIn(phone, user.email, 'the phone');
});

adminTest('the dashboard shows new sign-ins live, and their "End session" button works', async ({ device }) => {
  const user = await newUser('alice-signs-in');
  const adminBrowser = await device();
  const dashboard = await openDashboard(adminBrowser);
  const row = rowOf(dashboard, user.email);
  assert.equal(await row.count(), '0');
  assert.equal(await row.status(), 'Signed out');
  const totalBefore = await orgSessionCount(dashboard);

  const laptop = await signInTab(await device(), env.app.url, user);
  await waitForCount(dashboard, user.email, 1);
  const laptopSession = await sessionOf(laptop);
  assert.equal(await row.session(laptopSession).count(), 1, 'the new session is listed, by its id');
  assert.equal(await row.status(), 'Signed in just now');
  assert.match(await row.classes(), /\bjust-signed-in\b/);
  assert.equal(await orgSessionCount(dashboard), totalBefore + 1);
  assert.match(await row.session(laptopSession).innerText(), /signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  await screenshot(dashboard, 'admin-dashboard-new-sign-in');

  const phone = await signInTab(await device(), env.app.url, user);
  await waitForCount(dashboard, user.email, 2);
  assert.equal(await row.sessions.count(), 2);
  assert.equal(await row.sessions.first().getAttribute('data-session-id'), await sessionOf(phone), 'the newest is first');
  assert.equal(await orgSessionCount(dashboard), totalBefore + 2);
  assert.ok(await notReloaded(dashboard), 'the dashboard changed without reloading');

  // The button added live ends that session.
  await watchForSignOut({ laptop }, 'admin');
  const endLaptop = row.session(laptopSession).locator('button', { hasText: 'End session' });
  assert.match(await endLaptop.getAttribute('aria-label'), new RegExp(`^End the .+ session of ${user.email.replace(/[.]/g, '\\.')}$`));
  await dashboard.bringToFront();
  await submit(dashboard, () => endLaptop.click());
  assert.equal(await dashboard.locator('.flash').innerText(), 'Session ended.');
  assert.equal(await row.count(), '1');
  await waitForSignedOut(laptop, 'admin');
  await expectStillSignedIn(phone, user.email, 'the phone');
});

adminTest('only administrators can open the dashboard and its stream', async ({ device }) => {
  const user = await newUser('not-an-admin');
  const page = await signInTab(await device(), env.app.url, user);
  const ownSession = await sessionOf(page);
  assert.equal(await page.locator('nav.account').getByRole('link', { name: 'Admin' }).count(), 0, 'no Admin link');
  const response = await page.goto(`${env.app.url}/admin`);
  assert.equal(response.status(), 403);
  assert.equal(await page.locator('#live-status').count(), 0);
  assert.equal(await page.locator('tbody tr[data-email]').count(), 0, 'no user is listed');
  const status = (request) => page.evaluate(async ([url, method]) =>
    (await fetch(url, { method, redirect: 'manual' })).status, request);
  assert.equal(await status(['/admin/events', 'GET']), 403, 'GET /admin/events');
  assert.equal(await status([`/admin/sessions/${ownSession}/logout`, 'POST']), 403, 'POST /admin/sessions/…/logout');
  await page.goto(`${env.app.url}/todos`);
  assert.equal(path(page), '/todos', 'still signed in');
});
