// Debian's headless Chromium for the browser tests: launching it, signing in through the form,
// submitting forms and keeping screenshots.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { E2E_DIR } from './server.mjs';

/** Where screenshots go (gitignored). */
export const ARTIFACTS_DIR = join(E2E_DIR, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/**
 * Launches Debian's Chromium headless, with the flags this closed network needs (and `extraArgs`,
 * e.g. `LOCAL_ONLY_ARGS`).
 */
export function launchBrowser({ extraArgs = [] } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs,
    ],
  });
}

/**
 * Chromium flags that make every host name but 127.0.0.1 fail at once (for timings: the test
 * provider's pages ask for a web font from fonts.googleapis.com, which this network cannot reach).
 */
export const LOCAL_ONLY_ARGS = ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];

/** Signs in through the form and waits for the page it leads to. */
export async function login(page, url, email, password) {
  await page.goto(`${url}/login`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await submit(page, () => page.getByRole('button', { name: 'Sign in' }).click());
}

/** Runs `action` (a click or key press that submits a form) and waits for the page it leads to. */
export async function submit(page, action) {
  const navigated = page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame());
  await action();
  await navigated;
  await page.waitForLoadState('load');
}

/** Saves a full-page screenshot as artifacts/NAME.png and returns its path. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^a-z0-9-]+/gi, '-').toLowerCase()}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
