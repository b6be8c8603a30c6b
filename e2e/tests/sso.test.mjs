// Single sign-on, as a person sees it: sign in through the organisation's own OpenID Provider
// (e2e/idp: oidc-provider, with its real login and logout pages), get signed out live when signing
// out there (OpenID Connect back-channel logout), and see SSO errors on the sign-in page.
//
// The first three tests are one story and share one browser context (the "laptop", which holds the
// provider's cookies as well as the app's); they run in order.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  LOCAL_ONLY_ARGS, REASON_TEXT, describeSignOuts, expectOnSignInPage, expectSignedOutWithin, expectStillSignedIn,
  installSignedOutProbe, isProviderLoginPage, launchBrowser, screenshot, signInAtProvider,
  signInTab, signedOutAt, ssoForm, startApp, startOrgIdp, startSso, submit,
  waitForLiveStream, waitForSignedOut, watchForSignOut,
} from '../lib/app.mjs';
import { DESKTOP, keepEvidence } from '../lib/suite.mjs';

/** How soon after the person confirms the sign-out at the provider the app's tab must say so. */
const BACKCHANNEL_WITHIN_MS = 5_000;

let app;
let idp;
let browser;
const contexts = [];
/** What the story's tests hand on to each other. */
const story = {};

before(async () => {
  app = await startApp();
  const alice = app.accounts.alice;
  // The story links alice's existing (password) account to her IdP identity, which an org must
  // opt into (IPSIE: no linking by default), and keeps password devices (alice's, bob's), which in
  // an org with SSO only break-glass users may have.
  idp = await startOrgIdp(app, {
    accounts: { [alice.email]: { sub: '00u-alice', email: alice.email, email_verified: true } },
    linkByEmail: true,
  });
  for (const who of [alice, app.accounts.bob]) {
    await app.cli(['user', 'break-glass', '--org', app.org.slug, '--email', who.email, 'true', '--json']);
  }
  browser = await launchBrowser({ extraArgs: LOCAL_ONLY_ARGS }); // the provider's pages ask for a Google font
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await idp?.stop();
    await app?.stop();
  }
});

async function device() {
  const context = await browser.newContext({ viewport: DESKTOP });
  contexts.push(context);
  return context;
}

/**
 * A test whose failure keeps a screenshot of every open page, and the ends of the app's and the
 * provider's logs.
 */
function ssoTest(name, fn) {
  test(name, { timeout: 90_000 }, async (t) => {
    try {
      await fn(t);
    } catch (error) {
      await keepEvidence(error, name, contexts, [
        ['server log', () => app?.serverLog(), 15],
        ['provider log', () => idp?.log(), 10],
      ]);
      throw error;
    }
  });
}

const path = (page) => new URL(page.url()).pathname;
const todosHeading = (page) => page.getByRole('heading', { name: 'Your todos' });
const signedInAs = (page) => page.locator('nav.account .who').innerText();

/** Records the URL of every document request of `page`'s main frame (redirects included). */
function recordNavigations(page) {
  const urls = [];
  page.on('request', (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) urls.push(request.url());
  });
  return urls;
}

/**
 * Records in `page` (in sessionStorage, which outlives the move to /login) what the "Signed out"
 * card says the moment it appears. Read it with `cardSeen(page)`.
 */
async function recordCard(page, todoTitle) {
  await page.evaluate((todo) => {
    sessionStorage.removeItem('e2e-card');
    const observer = new MutationObserver(() => {
      const card = document.querySelector('.signed-out');
      if (!card || sessionStorage.getItem('e2e-card') !== null) return;
      observer.disconnect();
      sessionStorage.setItem('e2e-card', JSON.stringify({
        path: location.pathname,
        heading: card.querySelector('h1')?.textContent.trim(),
        text: card.querySelector('p')?.textContent.trim(),
        link: card.querySelector('a')?.getAttribute('href'),
        role: card.getAttribute('role'),
        title: document.title,
        todoShown: document.body.textContent.includes(todo),
        accountMenus: document.querySelectorAll('nav.account').length,
      }));
    });
    observer.observe(document.documentElement, { childList: true, subtree: true, characterData: true });
  }, todoTitle);
}

/** What `recordCard` saw, or null (call it once the page is loaded). */
async function cardSeen(page) {
  const json = await page.evaluate(() => sessionStorage.getItem('e2e-card'));
  return json === null ? null : JSON.parse(json);
}

/** Fails unless the provider logged no failed back-channel delivery. */
function expectNoBackchannelFailure() {
  const failures = idp.log().split('\n').filter((line) => /back-channel logout to .* failed/.test(line));
  assert.deepEqual(failures, [], 'the provider could deliver its back-channel logouts');
}

ssoTest("SSO sign-in through the provider's login page lands on alice's todo list", async (t) => {
  const alice = app.accounts.alice;
  const laptop = await device();
  const page = await laptop.newPage();
  const navigations = recordNavigations(page);
  const startRequest = page.waitForRequest((r) => new URL(r.url()).pathname === '/auth/oidc/start');

  await startSso(page, app.url, alice.email);
  assert.ok(await isProviderLoginPage(page, idp.issuer), `the provider's login page, not ${page.url()}`);
  assert.equal(await page.title(), 'Sign-in');
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign-in');
  // The app sent the browser to the provider's authorization endpoint, with PKCE and its callback.
  const authorize = navigations.map((u) => new URL(u)).find((u) => u.origin === idp.issuer && u.pathname === '/auth');
  assert.ok(authorize, `went through ${idp.issuer}/auth: ${navigations.join(' → ')}`);
  // The sign-in page's form posts (a start from another site is refused by the CSRF guard).
  const started = await startRequest;
  assert.equal(started.method(), 'POST', 'the SSO form posts');
  assert.equal(new URLSearchParams(started.postData() ?? '').get('org'), alice.email, 'started SSO for alice');
  assert.equal(authorize.searchParams.get('client_id'), idp.clientId);
  assert.equal(authorize.searchParams.get('redirect_uri'), `${app.url}/auth/oidc/callback`);
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.match(authorize.searchParams.get('scope'), /\bopenid\b/);
  await screenshot(page, 'sso-provider-login');

  navigations.length = 0;
  await signInAtProvider(page, alice.email);
  assert.equal(path(page), '/todos', `after the provider's login: ${page.url()} (via ${navigations.join(' → ')})`);
  assert.ok(navigations.some((u) => new URL(u).pathname === '/auth/oidc/callback'), 'came back through the callback');
  await todosHeading(page).waitFor();
  assert.equal(await signedInAs(page), alice.email);
  assert.equal(await page.locator('.flash-error').count(), 0, 'no error shown');
  t.diagnostic(`signed in through ${navigations.map((u) => new URL(u).pathname).join(' → ')}`);
  const session = await waitForLiveStream(page);

  // A todo added here shows on alice's password sign-in (test 2): SSO linked her existing account.
  const title = `Via SSO ${randomBytes(3).toString('hex')}`;
  await page.getByLabel('New todo').fill(title);
  await submit(page, () => page.getByRole('button', { name: 'Add', exact: true }).click());
  await page.getByText(title).waitFor();
  await waitForLiveStream(page);
  await screenshot(page, 'sso-todos');
  Object.assign(story, { laptop, tab: page, session, title });
});

ssoTest('signing out at the provider in another tab signs the SSO tab out live; a password sign-in stays', async (t) => {
  assert.ok(story.tab, 'needs the SSO sign-in of the previous test');
  const alice = app.accounts.alice;
  const { laptop, tab, title } = story;

  // Another device, signed in with alice's password: the same account, not the same IdP session.
  const phone = await device();
  const onPhone = await signInTab(phone, app.url, alice);
  await onPhone.getByText(title).waitFor({ timeout: 2_000 });
  assert.notEqual(await onPhone.evaluate(() => document.body.dataset.session), story.session);
  await installSignedOutProbe(onPhone);

  await waitForLiveStream(tab);
  const pages = { 'the SSO tab': tab };
  await watchForSignOut(pages, 'backchannel');
  await recordCard(tab, title);
  // In another tab of the same browser (the provider's cookies), the sign-out page of the provider.
  const atProvider = await laptop.newPage();
  await atProvider.goto(`${idp.issuer}/session/end`);
  assert.match(await atProvider.getByRole('heading', { level: 1 }).innerText(), /^Do you want to sign-out from /);
  const t0 = Date.now(); // "Yes, sign me out": the provider calls the app's back-channel logout, then answers

  const told = expectSignedOutWithin(pages, 'backchannel', t0, BACKCHANNEL_WITHIN_MS);
  told.catch(() => {}); // awaited below
  const signingOut = submit(atProvider, () => atProvider.getByRole('button', { name: 'Yes, sign me out' }).click())
    .then(() => ({ url: atProvider.url(), ms: Date.now() - t0 }));
  signingOut.catch(() => {}); // awaited below
  // The card gives way to the sign-in page after 800 ms: photograph it the moment it shows.
  if (await waitForSignedOut(tab, 'backchannel', { deadline: t0 + BACKCHANNEL_WITHIN_MS }) === 'card') {
    await screenshot(tab, 'sso-signed-out-backchannel');
    if (path(tab) !== '/todos') t.diagnostic('the card screenshot may show the sign-in page: the tab moved on meanwhile');
  } else {
    t.diagnostic('the tab was already on the sign-in page: no screenshot of the card');
  }
  const { url: landedOn, ms: confirmedMs } = await signingOut;
  assert.equal(landedOn, `${idp.issuer}/session/end/success`);
  assert.equal(await atProvider.getByRole('heading', { level: 1 }).innerText(), 'Sign-out Success');
  const seen = await told;
  t.diagnostic(`from "Yes, sign me out": the provider's answer loaded after ${confirmedMs} ms; ${describeSignOuts(seen)}`);

  await expectOnSignInPage(tab, 'backchannel', 'the SSO tab');
  // What the card said, as recorded in the page the moment it appeared.
  const card = await cardSeen(tab);
  assert.ok(card, 'the SSO tab showed the "Signed out" card');
  assert.equal(card.path, '/todos', 'the card shows in place of the list');
  assert.equal(card.role, 'alert');
  assert.equal(card.heading, 'Signed out');
  assert.equal(card.text, REASON_TEXT.backchannel);
  assert.equal(card.link, '/login?reason=backchannel', 'its "Sign in again" link');
  assert.equal(card.todoShown, false, 'the card replaces the list');
  assert.equal(card.accountMenus, 0, 'the account menu is gone');
  assert.equal(card.title, 'Signed out · ual-todo');
  await screenshot(tab, 'sso-login-backchannel');
  await tab.reload();
  assert.equal(path(tab), '/login', 'Reload: the sign-in page');
  assert.equal(await todosHeading(tab).count(), 0, 'Reload: no todo list');
  // A browser that signed in through SSO is sent back through its IdP, which asks for a login:
  // the person signed out there.
  await tab.goto(`${app.url}/todos`);
  assert.ok(await isProviderLoginPage(tab, idp.issuer), `the todo list sends to the provider's login, not ${tab.url()}`);
  expectNoBackchannelFailure();

  // Only that IdP session ended: the password sign-in is untouched.
  await onPhone.waitForTimeout(1_000);
  assert.equal(await signedOutAt(onPhone), null, 'the password device never showed the "Signed out" card');
  await expectStillSignedIn(onPhone, alice.email, 'the password device');
  await onPhone.getByText(title).waitFor({ timeout: 2_000 });
  await atProvider.close();
});

ssoTest('after signing out at the provider, SSO asks for the provider login again', async () => {
  assert.ok(story.tab, 'needs the SSO sign-in of the previous tests');
  const alice = app.accounts.alice;
  const { tab, session } = story;
  // The organisation ID works as well as the work email.
  await startSso(tab, app.url, app.org.slug);
  assert.ok(await isProviderLoginPage(tab, idp.issuer), `the provider's login page again, not ${tab.url()}`);
  await signInAtProvider(tab, alice.email);
  assert.equal(path(tab), '/todos', `after the provider's login: ${tab.url()}`);
  assert.equal(await signedInAs(tab), alice.email);
  await tab.getByText(story.title).waitFor({ timeout: 2_000 });
  assert.notEqual(await waitForLiveStream(tab), session, 'a new session');
});

ssoTest('an SSO error is shown on the sign-in page: no organisation for that', async () => {
  const context = await device();
  const page = await context.newPage();
  await page.goto(`${app.url}/login`);
  const form = ssoForm(page);
  await form.input.fill('nope');
  const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/oidc/start');
  await submit(page, () => form.button.click());
  assert.equal((await answered).status(), 404);
  assert.equal(new URL(page.url()).origin, app.url, 'stayed on the app');
  assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign in');
  const error = page.locator('#sso-error[role="alert"]');
  assert.match(await error.innerText(), /^No organisation signs in with single sign-on for that\./);
  assert.equal(await form.input.inputValue(), 'nope', 'what was typed is kept');
  assert.equal(await page.locator('section.sso form').getAttribute('aria-describedby'), 'sso-error');
  assert.equal(await page.locator('#login-error').count(), 0, 'the password form shows no error');
  assert.equal(await page.locator('nav.account').count(), 0, 'nobody is signed in');
  await screenshot(page, 'sso-error-unknown-org');
  await context.close();
});

ssoTest('another site cannot start SSO in a signed-in browser, by form or by link (login CSRF)', async () => {
  const context = await device();
  const bob = app.accounts.bob;
  const tab = await signInTab(context, app.url, bob);
  // A page on another site that would sign the visitor into the org of its choice.
  const evil = 'http://evil.test/';
  const attacker = await context.newPage();
  await attacker.route(`${evil}**`, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><title>A prize</title>
      <form id="start" method="post" action="${app.url}/auth/oidc/start"><input name="org" value="acme"></form>
      <a id="link" href="${app.url}/auth/oidc/start?org=acme">Claim it</a>`,
  }));

  await attacker.goto(evil);
  const posted = attacker.waitForResponse((r) => new URL(r.url()).pathname === '/auth/oidc/start');
  await submit(attacker, () => attacker.evaluate(() => document.getElementById('start').submit()));
  const answer = await posted;
  assert.equal(answer.status(), 403, 'the cross-site form is refused');
  assert.equal(new URL(attacker.url()).origin, app.url, 'not sent to the provider');

  await attacker.goto(evil);
  await submit(attacker, () => attacker.locator('#link').click());
  assert.equal(new URL(attacker.url()).origin, app.url, 'the link does not reach the provider');
  assert.equal(await ssoForm(attacker).input.inputValue(), 'acme', 'it only fills in the sign-in form');
  await screenshot(attacker, 'sso-cross-site-link');

  await tab.reload();
  assert.equal(await signedInAs(tab), bob.email, 'bob is still signed in as bob');
  await context.close();
});

ssoTest("cancelling at the provider's login page comes back to the sign-in page with the reason", async () => {
  const context = await device();
  const page = await context.newPage();
  await startSso(page, app.url, 'bob@acme.test');
  assert.ok(await isProviderLoginPage(page, idp.issuer), `the provider's login page, not ${page.url()}`);
  await submit(page, () => page.getByRole('link', { name: /Cancel/ }).click());
  assert.equal(new URL(page.url()).origin, app.url);
  assert.equal(path(page), '/auth/oidc/callback');
  assert.equal(await page.locator('#sso-error[role="alert"]').innerText(),
    "The sign-in was cancelled or refused at your organisation's sign-in service.");
  assert.equal(await page.locator('nav.account').count(), 0, 'nobody is signed in');
  await screenshot(page, 'sso-error-cancelled');
  await context.close();
});

ssoTest("the IdP's app tile (third-party-initiated login) signs in and lands on the page it names", async () => {
  const alice = app.accounts.alice;
  const context = await device();
  const page = await context.newPage();
  const initiate = new URL(`${app.url}/auth/oidc/initiate`);
  initiate.searchParams.set('iss', idp.issuer);
  initiate.searchParams.set('login_hint', alice.email);
  initiate.searchParams.set('target_link_uri', `${app.url}/settings/tokens`);

  await page.goto(initiate.href);

  assert.ok(await isProviderLoginPage(page, idp.issuer), `the provider's login page, not ${page.url()}`);
  await signInAtProvider(page, alice.email);
  assert.equal(path(page), '/settings/tokens', `landed on the page the tile named: ${page.url()}`);
  assert.equal(await signedInAs(page), alice.email);
  await screenshot(page, 'sso-initiated-login');
  story.tile = { context, page };
});

ssoTest('asked to sign in again, the tab goes through a fresh IdP sign-in and comes back to the same page and session', async (t) => {
  assert.ok(story.tile, 'needs the sign-in of the previous test');
  const alice = app.accounts.alice;
  const { page } = story.tile;
  const session = await waitForLiveStream(page);

  await app.cli(['user', 'reauth', '--org', app.org.slug, '--email', alice.email, '--json']);

  // Told live; the tab goes to sign in again, at the provider, which asks for a login (prompt=login).
  await page.waitForURL((url) => url.origin === idp.issuer, { timeout: 10_000 });
  assert.ok(await isProviderLoginPage(page, idp.issuer), `a fresh login at the provider, not ${page.url()}`);
  await screenshot(page, 'sso-reauth-provider-login');
  await signInAtProvider(page, alice.email);
  assert.equal(path(page), '/settings/tokens', `back on the same page: ${page.url()}`);
  assert.equal(await signedInAs(page), alice.email);
  assert.equal(await waitForLiveStream(page), session, 'the same session went on');
  t.diagnostic('re-established the session through the provider');
  await story.tile.context.close();
});
