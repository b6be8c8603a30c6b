// Single sign-on for the browser tests: the test OpenID Provider (e2e/idp) as a process, an org's
// SSO set up against it, and the provider's pages.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { submit } from './browser.mjs';
import { E2E_DIR, START_TIMEOUT_MS, stopServer } from './server.mjs';

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
  linkByEmail = false,
} = {}) {
  const idp = await startIdp({
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [`${app.url}/auth/oidc/callback`],
      post_logout_redirect_uris: [`${app.url}/login?reason=signed_out`],
      backchannel_logout_uri: `${app.url}/backchannel-logout`,
    }],
    accounts,
  });
  try {
    await app.setIdp({ issuer: idp.issuer, clientId, clientSecret, emailDomain, linkByEmail });
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
