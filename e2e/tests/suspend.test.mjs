// Suspension, as the people concerned see it: the user's open tabs leave their pages the moment
// the account is suspended, saying so, and an administrator's open dashboard shows the user
// Suspended without a reload, whether an administrator, an operator (the CLI) or the org's IdP
// (SCIM) suspended them.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  ARTIFACTS_DIR, describeSignOuts, expectOnSignInPage, expectSignedOutWithin, hasCommand, login, openTodosTab,
  screenshot, signInTab, submit, watchForSignOut,
} from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

/** How soon a suspended user's pages must say so. */
const LIVE_WITHIN_MS = 1_000;
/** The same from the start of the CLI command: the (debug) binary must start and connect first. */
const CLI_WITHIN_MS = 3_000;
/** How soon the dashboard must show it. */
const DASHBOARD_WITHIN_MS = 2_000;

const env = useAppAndBrowser();
const suspendTest = (name, fn) => deviceTest(env, name, fn);

const path = (page) => new URL(page.url()).pathname;
const newUser = (label) => env.app.createUser(`${label}-${randomBytes(3).toString('hex')}@acme.test`);
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Who suspended, as the dashboard says it (a pattern). */
const BY_ADMIN = escape('an administrator (admin admin@acme.test)');

/** Opens the dashboard in a new tab of `context` (signing the admin in on its first tab). */
async function openDashboard(context, query = '') {
  const page = await context.newPage();
  if (context.pages().length === 1) {
    await login(page, env.app.url, env.app.accounts.admin.email, env.app.accounts.admin.password);
  }
  await page.goto(`${env.app.url}/admin${query}`);
  assert.equal(path(page), '/admin');
  await page.locator('#live-status', { hasText: 'Live updates: on' }).waitFor({ timeout: 5_000 });
  await page.evaluate(() => { window.__marker = 1; }); // gone if the page reloads
  return page;
}

const notReloaded = (page) => page.evaluate(() => window.__marker === 1);

/** The dashboard's view of one user. */
function rowOf(page, email) {
  const row = page.locator(`tbody tr[data-email="${email}"]`);
  return {
    row,
    badge: row.locator('.state-badge'),
    changed: () => row.locator('.state-changed').innerText(),
    count: () => row.locator('.session-count').innerText(),
    suspend: row.getByRole('button', { name: `Suspend ${email}` }),
    reactivate: row.getByRole('button', { name: `Reactivate ${email}` }),
  };
}

/** Waits until the row's badge reads `text` on `page`. */
async function waitForBadge(page, email, text, timeout = DASHBOARD_WITHIN_MS) {
  await page.locator(`tbody tr[data-email="${email}"] .state-badge`, { hasText: new RegExp(`^${text}$`) })
    .waitFor({ timeout });
}

/** A user signed in with two tabs of one browser (one session), both live. */
async function userWithTwoTabs(device, label) {
  const user = await newUser(label);
  const browser = await device();
  const tab1 = await signInTab(browser, env.app.url, user);
  const tab2 = await openTodosTab(browser, env.app.url);
  return { user, tabs: { 'tab 1': tab1, 'tab 2': tab2 } };
}

/**
 * Runs `suspend()` and checks: both tabs say "Your account was suspended…" within `withinMs`
 * and land on the sign-in page saying it; `dashboard` shows the user Suspended (by `by`, a
 * pattern) live.
 */
async function expectSuspendedLive({ t, user, tabs, dashboard, by, suspend, withinMs = LIVE_WITHIN_MS }) {
  const row = rowOf(dashboard, user.email);
  assert.equal(await row.badge.innerText(), 'Active');
  assert.equal(await row.count(), '1', 'one session, two tabs');
  await watchForSignOut(tabs, 'suspended');

  const t0 = Date.now();
  const told = expectSignedOutWithin(tabs, 'suspended', t0, withinMs);
  told.catch(() => {}); // awaited below
  await suspend();
  t.diagnostic(describeSignOuts(await told));
  for (const [label, page] of Object.entries(tabs)) await expectOnSignInPage(page, 'suspended', label);

  await waitForBadge(dashboard, user.email, 'Suspended');
  assert.equal(await row.badge.getAttribute('data-state'), 'suspended');
  assert.match(await row.changed(), new RegExp(`^Suspended by ${by} · \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC$`));
  assert.equal(await row.count(), '0', 'its session is gone from the row');
  assert.match(await dashboard.locator('ol#feed > li').first().innerText(), new RegExp(`${escape(user.email)} suspended by `));
  assert.ok(await notReloaded(dashboard), 'the dashboard changed without reloading');
}

suspendTest('an administrator suspends a user from the dashboard: both tabs are told, the dashboards show it live', async ({ t, device }) => {
  const { user, tabs } = await userWithTwoTabs(device, 'suspended-by-admin');
  const adminBrowser = await device();
  const acting = await openDashboard(adminBrowser);
  const watcher = await openDashboard(adminBrowser);
  const button = rowOf(acting, user.email).suspend;

  await expectSuspendedLive({
    t, user, tabs, dashboard: watcher, by: BY_ADMIN,
    suspend: async () => {
      await acting.bringToFront();
      await submit(acting, () => button.click());
    },
  });
  const row = rowOf(watcher, user.email);
  assert.ok(await row.reactivate.isVisible(), 'Reactivate is offered');
  assert.equal(await row.suspend.isVisible(), false, 'Suspend is not');

  assert.equal(path(acting), '/admin');
  assert.equal(await acting.locator('.flash').innerText(),
    `Suspended ${user.email}: 1 session ended, 0 tokens revoked. They cannot sign in until reactivated.`);
  assert.equal(await rowOf(acting, user.email).badge.innerText(), 'Suspended');

  // Reactivated from the acting dashboard: the watching one shows it live too.
  await acting.bringToFront();
  await submit(acting, () => rowOf(acting, user.email).reactivate.click());
  assert.equal(await acting.locator('.flash').innerText(), `Reactivated ${user.email}: they can sign in again.`);
  await waitForBadge(watcher, user.email, 'Active');
  assert.match(await row.changed(), /^Reactivated by an administrator \(admin admin@acme\.test\) · /);
  assert.ok(await row.suspend.isVisible(), 'Suspend is offered again');
  assert.ok(await notReloaded(watcher));
});

suspendTest('an operator suspends a user with `ual-todo user suspend`: both tabs are told, the dashboard shows it live', async ({ t, device }) => {
  if (!(await hasCommand(['user', 'suspend']))) {
    t.skip('this build has no `ual-todo user suspend` yet (the CLI command lands with the lead\'s branch)');
    return;
  }
  const { user, tabs } = await userWithTwoTabs(device, 'suspended-by-cli');
  const dashboard = await openDashboard(await device());
  await expectSuspendedLive({
    t, user, tabs, dashboard, by: escape('an operator (command line)'), withinMs: CLI_WITHIN_MS,
    suspend: () => env.app.cli(['user', 'suspend', '--org', env.app.org.slug, '--email', user.email, '--json']),
  });
});

suspendTest('the org\'s IdP suspends a user over SCIM (active: false): both tabs are told, the dashboard shows it live', async ({ t, device }) => {
  if (!(await hasCommand(['scim-token', 'create']))) {
    t.skip('this build has no SCIM yet (needs the scim branch merged)');
    return;
  }
  const { token } = await env.app.cli(['scim-token', 'create', '--org', env.app.org.slug, '--json']);
  const { user, tabs } = await userWithTwoTabs(device, 'suspended-by-scim');
  const dashboard = await openDashboard(await device());
  const id = await rowOf(dashboard, user.email).row.getAttribute('data-user-id');
  await expectSuspendedLive({
    t, user, tabs, dashboard, by: 'SCIM provisioning \\(.+\\)', // the actor names the token
    suspend: async () => {
      const response = await fetch(`${env.app.url}/scim/v2/Users/${id}`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' },
        body: JSON.stringify({
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', value: { active: false } }],
        }),
      });
      assert.equal(response.status, 200, await response.text());
    },
  });
  const row = rowOf(dashboard, user.email);
  assert.equal(await row.reactivate.count(), 0, 'a SCIM-managed user cannot be reactivated here');
  await dashboard.reload();
  assert.equal(await row.row.locator('.managed').innerText(), 'Managed by your IdP (SCIM)');
});

suspendTest('screenshots: the dashboard with a suspended and a SCIM-managed user, desktop and phone', async ({ device }) => {
  const suspended = await newUser('suspended');
  const managed = await newUser('provisioned');
  const dashboard = await openDashboard(await device());
  // SCIM provisioning is not on every build: mark the user as the SCIM branch would.
  await submit(dashboard, () => rowOf(dashboard, suspended.email).suspend.click());
  await markScimManaged(managed.email);
  await dashboard.goto(`${env.app.url}/admin`);
  await submit(dashboard, () => dashboard.getByRole('button', { name: `Turn break-glass on: ${managed.email}` }).click());
  assert.equal(await rowOf(dashboard, managed.email).row.locator('.break-glass').innerText(), 'break-glass');
  const row = rowOf(dashboard, managed.email);
  assert.equal(await row.row.locator('.managed').innerText(), 'Managed by your IdP (SCIM)');
  assert.equal(await row.suspend.count(), 0, 'no Suspend button for a SCIM-managed user');
  assert.equal(await rowOf(dashboard, suspended.email).badge.innerText(), 'Suspended');
  await dashboard.setViewportSize(DESKTOP);
  await screenshot(dashboard, 'dashboard-states-desktop');
  await dashboard.setViewportSize(PHONE);
  await screenshot(dashboard, 'dashboard-states-phone');
  // The two rows as a phone shows them, at screen size.
  await row.row.scrollIntoViewIfNeeded();
  await dashboard.screenshot({ path: join(ARTIFACTS_DIR, 'dashboard-states-phone-rows.png') });
  const overflow = await dashboard.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the dashboard scrolls sideways by ${overflow}px at phone width`);
});

/** Marks a user as provisioned by the org's IdP, directly in the database. */
async function markScimManaged(email) {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const db = new URL(env.app.databaseUrl);
  await promisify(execFile)('psql', ['-h', db.hostname, '-U', db.username, '-d', db.pathname.slice(1),
    '-v', 'ON_ERROR_STOP=1', '-q', '-c',
    `UPDATE users SET managed_by = 'scim', external_id = 'okta-00u1' WHERE email = '${email}'`]);
}
