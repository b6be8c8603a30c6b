// The node:test glue the browser test files share: one app and one Chromium per file, tests that
// open browser contexts ("devices"), and the evidence a failed test keeps.

import { after, before, test } from 'node:test';
import { launchBrowser, screenshot, startApp } from './app.mjs';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * Starts the app and Chromium before the file's tests and stops them after. The returned
 * object's `app` and `browser` are set by the time the tests run.
 */
export function useAppAndBrowser() {
  const env = { app: null, browser: null };
  before(async () => {
    env.app = await startApp();
    env.browser = await launchBrowser();
  });
  after(async () => {
    try {
      await env.browser?.close();
    } finally {
      await env.app?.stop();
    }
  });
  return env;
}

/**
 * Adds to a failed test's error a screenshot of every page still open in `contexts`, and the last
 * lines of each log (`[label, () => text, lines]`).
 */
export async function keepEvidence(error, name, contexts, logs) {
  const pages = contexts.flatMap((context) => context.pages());
  for (const [i, page] of pages.entries()) {
    const shot = await screenshot(page, `failed-${name.slice(0, 60)}-${i + 1}`).catch(() => null);
    if (shot) error.message += `\n(screenshot: ${shot} — ${page.url()})`;
  }
  for (const [label, text, lines] of logs) {
    error.message += `\n--- ${label} (last lines) ---\n${(text() ?? '').split('\n').slice(-lines).join('\n')}`;
  }
}

/**
 * A test of the file's app that opens as many browser contexts as it needs with `device()`; all
 * are closed at the end. `fn` gets `{ t, device, logs }`: it may push more `() => text` server
 * logs, whose ends a failure keeps with the screenshots.
 */
export function deviceTest(env, name, fn) {
  test(name, { timeout: 90_000 }, async (t) => {
    const contexts = [];
    const logs = [() => env.app.serverLog()];
    const device = async () => {
      const context = await env.browser.newContext({ viewport: DESKTOP });
      contexts.push(context);
      return context;
    };
    try {
      await fn({ t, device, logs });
    } catch (error) {
      await keepEvidence(error, name, contexts, logs.map((log) => ['server log', log, 15]));
      throw error;
    } finally {
      for (const context of contexts) await context.close().catch(() => {});
    }
  });
}
