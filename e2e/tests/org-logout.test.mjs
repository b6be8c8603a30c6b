// "Sign out everyone in the org", as the people concerned see it: three users' open tabs leave
// their pages the moment an administrator confirms it on the dashboard, saying an administrator
// signed them out; the administrator's own dashboard stays, and shows the run's count.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  describeSignOuts, expectOnSignInPage, expectSignedOutWithin, expectStillSignedIn, login, screenshot, signInTab,
  submit, waitForLiveStream, watchForSignOut,
} from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

/** How soon the users' tabs must say they were signed out (the debug build, a busy machine). */
const LIVE_WITHIN_MS = 3_000;

const env = useAppAndBrowser();
const path = (page) => new URL(page.url()).pathname;
const newUser = (label) => env.app.createUser(`${label}-${randomBytes(3).toString('hex')}@acme.test`);

/** The admin's dashboard, signed in on a new device; its live feed on. */
async function openDashboard(device) {
  const page = await (await device()).newPage();
  await login(page, env.app.url, env.app.accounts.admin.email, env.app.accounts.admin.password);
  await page.goto(`${env.app.url}/admin`);
  assert.equal(path(page), '/admin');
  await page.locator('#live-status', { hasText: 'Live updates: on' }).waitFor({ timeout: 5_000 });
  return page;
}

/** Types `slug` into the confirmation and presses the button; resolves on the page it leads to. */
async function confirmWith(dashboard, slug) {
  await dashboard.getByLabel(`Type ${env.app.org.slug} to confirm`).fill(slug);
  await submit(dashboard, () => dashboard.getByRole('button', { name: `Sign out everyone in ${env.app.org.name}` }).click());
}

deviceTest(env, 'an administrator signs out everyone: three users\' tabs show the sign-in page live, the admin\'s tab stays', async ({ t, device }) => {
  const users = await Promise.all(['first', 'second', 'third'].map(newUser));
  const tabs = {};
  for (const [i, user] of users.entries()) tabs[`user ${i + 1}`] = await signInTab(await device(), env.app.url, user);
  const dashboard = await openDashboard(device);

  // A mistyped slug signs out nobody, and says why.
  await confirmWith(dashboard, 'acm');
  assert.equal(await dashboard.locator('.flash').innerText(),
    `Nobody was signed out: to sign out everyone in ${env.app.org.name}, type its slug, ${env.app.org.slug}, exactly.`);
  await expectStillSignedIn(tabs['user 1'], users[0].email, 'user 1');
  await waitForLiveStream(tabs['user 1']); // the reload opened a new stream

  await watchForSignOut(tabs, 'admin');
  const t0 = Date.now();
  const told = expectSignedOutWithin(tabs, 'admin', t0, LIVE_WITHIN_MS);
  told.catch(() => {}); // awaited below
  await confirmWith(dashboard, env.app.org.slug);
  t.diagnostic(describeSignOuts(await told));
  for (const [label, page] of Object.entries(tabs)) await expectOnSignInPage(page, 'admin', label);

  // The admin's own page stays, shows the run's count once done, and is still signed in.
  assert.equal(path(dashboard), '/admin');
  await dashboard.locator('#org-logout-status', { hasText: 'Everyone was signed out by admin admin@acme.test' })
    .waitFor({ timeout: 10_000 });
  const summary = await dashboard.locator('#org-logout-summary').innerText();
  const [, done, total] = summary.match(/^(\d+) of (\d+) users · (\d+) sessions? ended · \d+ tokens? revoked$/) ?? [];
  assert.ok(done && done === total, `every user done: ${summary}`);
  assert.equal(await dashboard.locator('#org-logout-bar').getAttribute('value'), done);
  await dashboard.locator('#live-status', { hasText: 'Live updates: on' }).waitFor({ timeout: 5_000 });
  await dashboard.reload();
  assert.equal(path(dashboard), '/admin', 'the admin is still signed in');

  await dashboard.setViewportSize(DESKTOP);
  await screenshot(dashboard, 'dashboard-org-logout-desktop');
  await dashboard.setViewportSize(PHONE);
  await screenshot(dashboard, 'dashboard-org-logout-phone');
  const overflow = await dashboard.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the dashboard scrolls sideways by ${overflow}px at phone width`);
});
