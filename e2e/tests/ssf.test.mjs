// Shared Signals, as the signed-in person sees it: a CAEP session-revoked event pushed by the
// organisation's transmitter signs their open tabs out at once, saying why.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import {
  TRANSMITTER_BEARER, describeSignOuts, expectOnSignInPage, expectSignedOutWithin, openTodosTab,
  signInTab, startTransmitter, watchForSignOut,
} from '../lib/app.mjs';
import { deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

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

deviceTest(env, "a pushed session-revoked (Okta's shape) signs the user's tabs out live", async ({ t, device }) => {
  const transmitter = await connected();
  const alice = env.app.accounts.alice;
  const laptop = await device();
  const tab1 = await signInTab(laptop, env.app.url, alice);
  const tab2 = await openTodosTab(laptop, env.app.url);
  const pages = { 'tab 1': tab1, 'tab 2': tab2 };
  await watchForSignOut(pages, 'caep');

  const t0 = Date.now();
  const told = expectSignedOutWithin(pages, 'caep', t0, LIVE_WITHIN_MS);
  told.catch(() => {});
  const delivered = await transmitter.example('okta-session-revoked', { email: alice.email });
  const answeredIn = Date.now() - t0;
  assert.equal(delivered.status, 202, JSON.stringify(delivered));
  const seen = await told;
  for (const { label, cardMs } of seen) assert.ok(cardMs !== null, `${label} showed the "Signed out" card`);
  for (const [label, page] of Object.entries(pages)) await expectOnSignInPage(page, 'caep', label);
  t.diagnostic(`202 after ${answeredIn} ms; ${describeSignOuts(seen)}`);

  await tab1.goto(`${env.app.url}/todos`);
  assert.equal(new URL(tab1.url()).pathname, '/login');
});
