// The app as an operator runs it behind a load balancer, for the browser tests: a private
// PostgreSQL 15 that a test may restart (initdb + pg_ctl on a temp dir; never the shared server),
// and `scripts/cluster` (instances behind nginx) with a handle on each instance.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { APP_BIN, E2E_DIR, START_TIMEOUT_MS } from './server.mjs';

const run = promisify(execFile);
const CLUSTER_SCRIPT = join(E2E_DIR, '..', 'scripts', 'cluster');
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Whether 127.0.0.1:`port` is free to listen on. */
function portIsFree(port) {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/**
 * The first of `count` consecutive free ports on 127.0.0.1, from a random start below Linux's
 * ephemeral range (32768+), so no outgoing connection takes one while an instance restarts.
 */
export async function freePorts(count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => portIsFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`found no ${count} consecutive free ports`);
}

/** PostgreSQL's programs: PG_BIN, or the newest /usr/lib/postgresql/N/bin. */
function pgBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`;
}

/**
 * Starts a private PostgreSQL on a free port, in a temp dir (PostgreSQL refuses to run as root, so
 * as root it runs as the `postgres` user). Returns { url(db), restart(), stop() }.
 */
export async function startPostgres() {
  const bin = pgBin();
  const dir = await mkdtemp(join(tmpdir(), 'ual-todo-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout), Number(gid));
  }
  const pg = (program, args) => (asRoot
    ? run('runuser', ['-u', 'postgres', '--', join(bin, program), ...args], { timeout: START_TIMEOUT_MS })
    : run(join(bin, program), args, { timeout: START_TIMEOUT_MS }));
  const data = join(dir, 'data');
  const port = await freePorts(1);
  const ctl = (...args) => pg('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', ...args]);
  const stop = async () => {
    await ctl('-m', 'immediate', 'stop').catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    // Durability does not matter here; speed on a shared machine does.
    await ctl('-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`, 'start');
  } catch (error) {
    const log = readFileSync(join(dir, 'log'), 'utf8').slice(-2_000);
    await stop();
    throw new Error(`the private PostgreSQL did not start: ${error.message}\n${error.stderr ?? ''}\n${log}`);
  }
  return {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    /** Stops the server (fast: every connection is cut) and starts it again with its options. */
    restart: () => ctl('-m', 'fast', 'restart'),
    log: () => readFileSync(join(dir, 'log'), 'utf8'),
    stop,
  };
}

/** Runs `ual-todo ARGS` (ending in --json) on `databaseUrl`; resolves with its JSON. */
export async function cliJson(databaseUrl, args) {
  const env = { ...process.env, DATABASE_URL: databaseUrl };
  try {
    const { stdout } = await run(APP_BIN, args, { env, timeout: START_TIMEOUT_MS });
    return JSON.parse(stdout);
  } catch (error) {
    throw new Error(`\`ual-todo ${args.join(' ')}\` failed: ${error.message}\n${error.stderr ?? ''}`);
  }
}

/** A metric's value in Prometheus text (the first series of that name), or NaN. */
function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : Number.NaN;
}

/**
 * `scripts/cluster up N` on `databaseUrl` with its own port range and directory, the test build
 * and `env` (e.g. SSE_KEEP_ALIVE). Returns the cluster: { url (nginx), instances ([1..N]),
 * instanceUrl(i), pid(i), kill(i, signal), up(), restart(), down(), metrics(i), streams(),
 * waitForStreams(total), logs() }.
 */
export async function startCluster({ databaseUrl, instances = 3, env = {} }) {
  const port = await freePorts(instances + 1);
  const dir = await mkdtemp(join(tmpdir(), 'ual-todo-cluster-'));
  const clusterEnv = {
    ...process.env, DATABASE_URL: databaseUrl, CLUSTER_PORT: String(port), CLUSTER_DIR: dir,
    UAL_TODO_BIN: APP_BIN, RUST_LOG: process.env.RUST_LOG ?? 'info', ...env,
  };
  delete clusterEnv.PUBLIC_URL; // the proxy's own URL
  const script = async (...args) => {
    try {
      return (await run(CLUSTER_SCRIPT, args, { env: clusterEnv, timeout: 4 * START_TIMEOUT_MS })).stdout;
    } catch (error) {
      throw new Error(`scripts/cluster ${args.join(' ')} failed: ${error.message}\n${error.stderr ?? ''}`);
    }
  };
  const indexes = Array.from({ length: instances }, (_, i) => i + 1);
  const read = (file) => { try { return readFileSync(join(dir, file), 'utf8'); } catch { return ''; } };
  const instanceUrl = (i) => `http://127.0.0.1:${port + i}`;
  const metrics = async (i) => {
    try {
      return await (await fetch(`${instanceUrl(i)}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    } catch {
      return ''; // down
    }
  };
  /** Open live streams per instance (index 0 is instance 1); NaN for an instance that is down. */
  const streams = () => Promise.all(indexes.map(async (i) => metric(await metrics(i), 'ual_todo_sse_streams')));
  let url;
  try {
    url = (await script('up', String(instances))).trim().split('\n').at(-1);
  } catch (error) {
    await script('down').catch(() => {});
    throw error;
  }
  const cluster = {
    url,
    dir,
    instances: indexes,
    instanceUrl,
    pid: (i) => Number(read(`instance-${i}.pid`)),
    /** Sends `signal` to instance i; for SIGKILL, resolves once its port is free
     * (its sockets are closed: the process may take longer to be reaped). */
    async kill(i, signal = 'SIGKILL') {
      process.kill(cluster.pid(i), signal);
      while (signal === 'SIGKILL' && !(await portIsFree(port + i))) await sleep(10);
    },
    /** Starts whatever is not running and waits until all is healthy. */
    up: () => script('up'),
    /** Rolling restart (`scripts/cluster restart`). */
    restart: () => script('restart'),
    down: () => script('down'),
    metric: async (i, name) => metric(await metrics(i), name),
    streams,
    /**
     * Waits until the instances hold `total` live streams in all (a closed tab's stream goes at
     * the instance's next keep-alive); resolves with the count per instance.
     */
    async waitForStreams(total, { timeout = 10_000 } = {}) {
      const deadline = Date.now() + timeout;
      let counts = [];
      while (Date.now() < deadline) {
        counts = await streams();
        if (counts.reduce((sum, n) => sum + (Number.isNaN(n) ? 0 : n), 0) === total) return counts;
        await sleep(50);
      }
      throw new Error(`the instances held [${counts}] live streams, not ${total} in all, after ${timeout} ms`);
    },
    /** nginx's error log. */
    nginxErrors: () => read('nginx/error.log'),
    /** The ends of every instance's log and of nginx's error log, for a failed test. */
    logs: () => [
      ...indexes.map((i) => [`instance ${i}`, () => read(`instance-${i}.log`), 12]),
      ['nginx error log', () => read('nginx/error.log'), 12],
    ],
    async stop() {
      await script('down').catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
