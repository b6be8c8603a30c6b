// Shared Signals, as people see it: the org's admin finds the stream on the Keys & identity
// provider page (its status, verification, events) and verifies it there; a CAEP session-revoked
// event in Okta's shape, pushed by the org's transmitter, signs the user's open tabs out at once,
// saying why.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after } from 'node:test';
import {
  ARTIFACTS_DIR, LOCAL_ONLY_ARGS, TRANSMITTER_BEARER, describeSignOuts, expectOnSignInPage, expectSignedOutWithin,
  isProviderLoginPage, launchBrowser, login, openTodosTab, screenshot, signInAtProvider, startOrgIdp,
  startSso, startTransmitter, submit, waitForLiveStream, watchForSignOut,
} from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

/** How soon after the push every open page must say it was signed out. */
const LIVE_WITHIN_MS = 1_000;

const env = useAppAndBrowser();
let transmitter;
/** The transmitter, with the demo org's push stream at it (set up as an operator does). */
async function connected() {
  if (!transmitter) {
    transmitter = await startTransmitter();
    await env.app.cliWithInput([
      '--public-url', env.app.url, 'org', 'set-ssf', env.app.org.slug,
      '--transmitter', transmitter.issuer, '--bearer-stdin', '--json',
    ], `${TRANSMITTER_BEARER}\n`);
  }
  return transmitter;
}
after(() => transmitter?.stop());

/** The admin's Keys & identity provider page, scrolled to the Shared Signals card. */
async function openCard(context) {
  const page = await context.newPage();
  const admin = env.app.accounts.admin;
  await login(page, env.app.url, admin.email, admin.password);
  await page.goto(`${env.app.url}/admin/keys#ssf`);
  const card = page.locator('#ssf');
  await card.getByRole('heading', { name: 'Shared Signals' }).waitFor();
  return { page, card };
}

/** The text of the card's `term` (its <dd>). */
const shown = (card, term) => card.locator(`dt:text-is("${term}") + dd`).innerText();

deviceTest(env, 'the admin sees the stream on the Keys page, verifies it and sees the event arrive', async ({ device }) => {
  const transmitter = await connected();
  const { page, card } = await openCard(await device());
  assert.equal(await shown(card, 'Status'), 'enabled');
  assert.match(await shown(card, 'Transmitter'), new RegExp(transmitter.issuer.replace(/[.]/g, '\\.')));
  assert.equal(await shown(card, 'Verified'), 'not yet');

  await submit(page, () => card.getByRole('button', { name: 'Verify the stream' }).click());
  assert.equal(await page.locator('.flash').innerText(), 'Verification asked for: its arrival shows below.');
  // The event arrives a moment later; the count of events is written once a second.
  let verified;
  let received;
  for (let i = 0; i < 50; i++) {
    verified = await shown(page.locator('#ssf'), 'Verified');
    received = await shown(page.locator('#ssf'), 'Events received');
    if (verified.startsWith('verification event arrived') && received === '1') break;
    await new Promise((r) => setTimeout(r, 100));
    await page.reload();
  }
  assert.match(verified, /^verification event arrived \d{4}-\d\d-\d\d \d\d:\d\d UTC \(asked /);
  assert.equal(received, '1');
});

deviceTest(env, 'screenshots: the Shared Signals card on the Keys page, desktop and phone', async ({ device }) => {
  await connected();
  const { page, card } = await openCard(await device());
  await page.setViewportSize(DESKTOP);
  await screenshot(page, 'keys-page-desktop');
  await card.screenshot({ path: join(ARTIFACTS_DIR, 'keys-ssf-desktop.png') });
  await page.setViewportSize(PHONE);
  await card.screenshot({ path: join(ARTIFACTS_DIR, 'keys-ssf-phone.png') });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the Keys page scrolls sideways by ${overflow}px at phone width`);
});

// Last: it sets up single sign-on for the demo org, after which its other users sign in through it.
deviceTest(env, "a pushed session-revoked in Okta's shape signs the SSO user's tabs out live", async ({ t }) => {
  const transmitter = await connected();
  const email = `sso-${randomBytes(3).toString('hex')}@acme.test`;
  const sub = `00u-${email}`;
  const idp = await startOrgIdp(env.app, { accounts: { [email]: { sub, email, email_verified: true } } });
  // The provider's pages ask for a web font this network cannot reach.
  const browser = await launchBrowser({ extraArgs: LOCAL_ONLY_ARGS });
  try {
    const laptop = await browser.newContext({ viewport: DESKTOP });
    const tab1 = await laptop.newPage();
    await startSso(tab1, env.app.url, email);
    assert.ok(await isProviderLoginPage(tab1, idp.issuer), tab1.url());
    await signInAtProvider(tab1, email);
    assert.equal(new URL(tab1.url()).pathname, '/todos');
    await waitForLiveStream(tab1);
    const tab2 = await openTodosTab(laptop, env.app.url);
    const pages = { 'tab 1': tab1, 'tab 2': tab2 };
    await watchForSignOut(pages, 'caep');

    const t0 = Date.now();
    const told = expectSignedOutWithin(pages, 'caep', t0, LIVE_WITHIN_MS);
    told.catch(() => {});
    // Okta's payload as it documents it; the user named as Okta names them: iss_sub at the IdP.
    const delivered = await transmitter.example('okta-session-revoked', { iss: idp.issuer, sub });
    const answeredIn = Date.now() - t0;
    assert.equal(delivered.status, 202, JSON.stringify(delivered));
    const seen = await told;
    for (const { label, cardMs } of seen) assert.ok(cardMs !== null, `${label} showed the "Signed out" card`);
    for (const [label, page] of Object.entries(pages)) await expectOnSignInPage(page, 'caep', label);
    t.diagnostic(`202 after ${answeredIn} ms; ${describeSignOuts(seen)}`);

    // The session is gone: a visit is sent to sign in again (through the org's IdP, whose own
    // session this event does not end).
    const todos = await laptop.request.get(`${env.app.url}/todos`, { maxRedirects: 0 });
    assert.equal(todos.status(), 303);
    assert.match(todos.headers().location, /^\/(login|auth\/oidc\/initiate)\b/);
  } finally {
    await browser.close().catch(() => {});
    await idp.stop();
  }
});
