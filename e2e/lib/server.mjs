// The app as separate processes for the browser tests: `ual-todo serve` on a fresh database seeded
// with `demo`, more instances on the same database, the CLI, and Universal Logout as an IdP sends it.

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The e2e/ folder. */
export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The ual-todo binary the tests run (`UAL_TODO_BIN`, relative to e2e/, or the debug build). */
export const APP_BIN = resolve(E2E_DIR, process.env.UAL_TODO_BIN ?? '../target/debug/ual-todo');
const BIN = APP_BIN;
const PG_HOST = '127.0.0.1';
const PG_USER = 'postgres';
/** How long a process may take to say it is ready. */
export const START_TIMEOUT_MS = 30_000;

/** The environment for the app: ours, minus settings that would point it elsewhere. */
function appEnv(databaseUrl, extra = {}) {
  // The e2e OpenID Provider runs on loopback over plain http: allowed only with this flag.
  const env = { ...process.env, DATABASE_URL: databaseUrl, RUST_LOG: process.env.RUST_LOG ?? 'info', ALLOW_INSECURE_IDP: 'true', ...extra };
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

/** Runs `ual-todo ARGS --json` with `input` on its standard input; resolves with its JSON. */
async function runJsonWithInput(args, databaseUrl, input) {
  try {
    const running = run(BIN, args, { env: appEnv(databaseUrl), timeout: START_TIMEOUT_MS });
    running.child.stdin.end(input);
    const { stdout } = await running;
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

/** Stops a served instance: SIGTERM, then SIGKILL after 5 s. */
export async function stopServer(server) {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    const exited = new Promise((done) => server.child.once('exit', done));
    server.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((done) => setTimeout(done, 5_000))]);
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  }
}

/**
 * Starts one more `ual-todo serve` on an existing database (another instance of the same app:
 * same sessions, same cookie key). Returns { url, serverLog(), stop() }.
 */
export async function startInstance(databaseUrl) {
  const server = serve(databaseUrl);
  const url = await server.url;
  return { url, serverLog: () => server.stderr(), stop: () => stopServer(server) };
}

/** Whether this build's CLI has the command `args` (e.g. ['user', 'suspend']): its --help works. */
export async function hasCommand(args) {
  try {
    await run(BIN, [...args, '--help'], { timeout: START_TIMEOUT_MS });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts ual-todo on a new database seeded with `demo`.
 * Returns { url, org, accounts, apiKey, databaseUrl, createUser(email, {admin}), cli(args),
 * setIdp({issuer, clientId, clientSecret, emailDomain, createUsers, linkByEmail}), startInstance(), serverLog(),
 * stop() };
 * `accounts` is keyed by the email's local part: accounts.alice = { email, password, admin };
 * `apiKey` is the org's Universal Logout key; `startInstance()` starts a second server on the
 * same database (stopped by `stop()` too).
 */
export async function startApp() {
  const dbName = `ual_todo_e2e_${randomBytes(6).toString('hex')}`;
  const databaseUrl = `postgres://${PG_USER}@${PG_HOST}:5432/${dbName}`;
  let server;
  const instances = [];
  const stop = async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await stopServer(server);
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
      apiKey: demo.api_key,
      databaseUrl,
      /** `ual-todo ARGS` on this app's database (ARGS ending in `--json`); resolves with its JSON. */
      cli: (args) => runJson(args, databaseUrl),
      /** The same with `input` on its standard input. */
      cliWithInput: (args, input) => runJsonWithInput(args, databaseUrl, input),
      createUser: (email, { admin = false } = {}) =>
        runJson(['user', 'create', '--org', demo.org.slug, '--email', email, ...(admin ? ['--admin'] : []), '--json'], databaseUrl),
      /** `ual-todo org set-idp` for the demo org (the secret goes in on stdin). Resolves with its JSON. */
      setIdp: ({ issuer, clientId, clientSecret, emailDomain, createUsers = true, linkByEmail = false }) => runJsonWithInput([
        'org', 'set-idp', demo.org.slug, '--issuer', issuer, '--client-id', clientId, '--client-secret-stdin',
        ...(emailDomain ? ['--email-domain', emailDomain] : []), ...(createUsers ? [] : ['--no-create-users']),
        ...(linkByEmail ? ['--link-by-email'] : []), '--json',
      ], databaseUrl, `${clientSecret}\n`),
      startInstance: async () => {
        const instance = await startInstance(databaseUrl);
        instances.push(instance);
        return instance;
      },
      serverLog: () => server.stderr(),
      stop,
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/**
 * Universal Logout, as an identity provider sends it: ends every session of `email`.
 * Returns the fetch Response (204 when it worked).
 */
export function universalLogout(url, apiKey, email) {
  return fetch(`${url}/global-token-revocation`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub_id: { format: 'email', email } }),
  });
}
