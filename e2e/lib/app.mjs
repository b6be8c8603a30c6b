// Helpers for the browser tests: start ual-todo on a fresh database, launch Debian's Chromium,
// sign in, and take screenshots. Nothing here knows about a test framework.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where screenshots go (gitignored). */
export const ARTIFACTS_DIR = join(E2E_DIR, 'artifacts');

const BIN = resolve(E2E_DIR, process.env.UAL_TODO_BIN ?? '../target/debug/ual-todo');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const PG_HOST = '127.0.0.1';
const PG_USER = 'postgres';
const START_TIMEOUT_MS = 30_000;

/** The environment for the app: ours, minus settings that would point it elsewhere. */
function appEnv(databaseUrl, extra = {}) {
  const env = { ...process.env, DATABASE_URL: databaseUrl, RUST_LOG: process.env.RUST_LOG ?? 'info', ...extra };
  delete env.PUBLIC_URL; // the port is picked at start, so the app must build its own URL
  return env;
}

async function runJson(args, databaseUrl) {
  try {
    const { stdout } = await run(BIN, args, { env: appEnv(databaseUrl), timeout: START_TIMEOUT_MS });
    return JSON.parse(stdout);
  } catch (error) {
    throw new Error(`\`ual-todo ${args.join(' ')}\` failed: ${error.message}\n${error.stderr ?? ''}`);
  }
}

async function dropDatabase(name) {
  await run('psql', ['-h', PG_HOST, '-U', PG_USER, '-v', 'ON_ERROR_STOP=1', '-q',
    '-c', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
}

/** Spawns `ual-todo serve` and resolves with its URL once it logs "serving at". */
function serve(databaseUrl) {
  const child = spawn(BIN, ['serve'], {
    env: appEnv(databaseUrl, { BIND: '127.0.0.1:0' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => fail(`did not say "serving at" within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    function fail(why) {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(new Error(`ual-todo serve ${why}. Its stderr:\n${stderr}`));
    }
    child.on('error', (error) => fail(`could not start (${BIN}): ${error.message}`));
    child.on('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      // eslint-disable-next-line no-control-regex
      const match = stderr.replace(/\x1b\[[0-9;]*m/g, '').match(/ual-todo is serving at (https?:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolveUrl(match[1].replace(/\/$/, ''));
      }
    });
  });
  return { child, url, stderr: () => stderr };
}

/**
 * Starts ual-todo on a new database seeded with `demo`.
 * Returns { url, accounts, databaseUrl, createUser(email, {admin}), serverLog(), stop() };
 * `accounts` is keyed by the email's local part: accounts.alice = { email, password, admin }.
 */
export async function startApp() {
  const dbName = `ual_todo_e2e_${randomBytes(6).toString('hex')}`;
  const databaseUrl = `postgres://${PG_USER}@${PG_HOST}:5432/${dbName}`;
  let server;
  const stop = async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      const exited = new Promise((done) => server.child.once('exit', done));
      server.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((done) => setTimeout(done, 5_000))]);
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    }
    await dropDatabase(dbName);
  };
  try {
    const demo = await runJson(['demo', '--json'], databaseUrl);
    const accounts = Object.fromEntries(demo.users.map((user) => [user.email.split('@')[0], user]));
    server = serve(databaseUrl);
    const url = await server.url;
    return {
      url,
      org: demo.org,
      accounts,
      databaseUrl,
      createUser: (email, { admin = false } = {}) =>
        runJson(['user', 'create', '--org', demo.org.slug, '--email', email, ...(admin ? ['--admin'] : []), '--json'], databaseUrl),
      serverLog: () => server.stderr(),
      stop,
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/** Launches Debian's Chromium headless, with the flags this closed network needs. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

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
