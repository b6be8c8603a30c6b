// Three instances behind a real nginx (scripts/cluster, deploy/nginx/ual-todo.conf) on a private
// PostgreSQL: what a browser and an identity provider see through the proxy while instances are
// killed, restarted one by one, and while PostgreSQL restarts.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  describeSignOuts, expectOnSignInPage, expectSignedOutWithin, expectStillSignedIn, launchBrowser,
  signInTab, submit, universalLogout, waitForLiveStream, waitForSignedOut, watchForSignOut,
} from '../lib/app.mjs';
import { cliJson, startCluster, startPostgres } from '../lib/cluster.mjs';
import { Client } from '../lib/http-client.mjs';
import { startLoad } from '../lib/load.mjs';
import { DESKTOP, keepEvidence } from '../lib/suite.mjs';

/** How soon after the revocation's answer a tab must say it was signed out (one hop more than
 * the single-instance tests allow for). */
const LIVE_WITHIN_MS = 2_000;
/** How soon a tab whose instance died must have its stream back, or be signed out. */
const RECONNECT_WITHIN_MS = 10_000;
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

const env = { pg: null, cluster: null, browser: null, demo: null, databaseUrl: null };

before(async () => {
  env.pg = await startPostgres();
  env.databaseUrl = env.pg.url('ual_todo_cluster');
  env.demo = await cliJson(env.databaseUrl, ['demo', '--json']);
  // Keep-alives every 2 s: a closed tab's stream leaves its instance's count soon, which the
  // tests read to know where each stream is.
  env.cluster = await startCluster({
    databaseUrl: env.databaseUrl, instances: 3, env: { SSE_KEEP_ALIVE: '2s', DATABASE_POOL_SIZE: '4' },
  });
  env.browser = await launchBrowser();
});

after(async () => {
  try {
    await env.browser?.close();
  } finally {
    await env.cluster?.stop();
    await env.pg?.stop();
  }
});

/** A test with browser contexts; a failure keeps screenshots and the ends of every log. */
function clusterTest(name, fn) {
  test(name, { timeout: 90_000 }, async (t) => {
    const contexts = [];
    const device = async () => {
      const context = await env.browser.newContext({ viewport: DESKTOP });
      contexts.push(context);
      return context;
    };
    try {
      await fn({ t, device });
    } catch (error) {
      await keepEvidence(error, name, contexts, [
        ...env.cluster.logs(), ['private PostgreSQL', () => env.pg.log(), 8],
      ]);
      throw error;
    } finally {
      for (const context of contexts) await context.close().catch(() => {});
    }
  });
}

const newUser = (label) => cliJson(env.databaseUrl, [
  'user', 'create', '--org', env.demo.org.slug, '--email', `${label}-${randomBytes(3).toString('hex')}@acme.test`, '--json',
]);
const demoAdmin = () => env.demo.users.find((u) => u.admin);
const path = (page) => new URL(page.url()).pathname;
const total = (counts) => counts.reduce((sum, n) => sum + (Number.isNaN(n) ? 0 : n), 0);

/** Universal Logout as an identity provider sends it, retried on 502/503 as IdPs do. */
async function revoke(url, email, retries = { count: 0 }) {
  for (let attempt = 0; ; attempt++) {
    const response = await universalLogout(url, env.demo.api_key, email);
    if (![502, 503].includes(response.status) || attempt === 5) return response;
    retries.count++;
    await sleep(200);
  }
}

/** Checks that `tab` is signed out live (reason `ual`) after `send()` answers 204. */
async function expectSignedOutLive(tab, label, send) {
  await watchForSignOut({ [label]: tab }, 'ual');
  const t0 = Date.now();
  const told = expectSignedOutWithin({ [label]: tab }, 'ual', t0, LIVE_WITHIN_MS);
  told.catch(() => {}); // awaited below
  const response = await send();
  assert.equal(response.status, 204, await response.text());
  const seen = await told;
  await expectOnSignInPage(tab, 'ual', label);
  return describeSignOuts(seen);
}

clusterTest('pages, todos and Universal Logout work through nginx', async ({ t, device }) => {
  const { cluster } = env;
  const user = await newUser('pages');
  const context = await device();
  const tab = await signInTab(context, cluster.url, user); // sign-in page, form, todos, live stream
  const title = `Through the proxy ${randomBytes(3).toString('hex')}`;
  await tab.getByLabel('New todo').fill(title);
  await submit(tab, () => tab.getByRole('button', { name: 'Add', exact: true }).click());
  await tab.getByText(title).waitFor();
  await tab.reload();
  await tab.getByText(title).waitFor({ timeout: 2_000 });
  await waitForLiveStream(tab);
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  const todosOn = (i) => fetch(`${cluster.instanceUrl(i)}/todos`, { headers: { cookie }, redirect: 'manual' });
  for (const i of cluster.instances) { // no stickiness needed: every instance knows the session
    const response = await todosOn(i);
    assert.equal(response.status, 200, `instance ${i}`);
    assert.ok((await response.text()).includes(title), `instance ${i} shows the todo`);
  }

  t.diagnostic(await expectSignedOutLive(tab, 'the tab', () => revoke(cluster.url, user.email)));

  for (const i of cluster.instances) { // the ended session is ended on every instance
    const response = await todosOn(i);
    assert.equal(response.status, 303, `instance ${i}`);
    assert.equal(new URL(response.headers.get('location'), cluster.url).pathname, '/login', `instance ${i}`);
  }
});

clusterTest('a session records the client address nginx saw, not one the client forged', async () => {
  const { cluster } = env;
  const user = await newUser('address');
  // Any 127.x.y.z reaches this machine: the client comes from 127.0.0.23 and claims 203.0.113.9.
  const client = new Client(cluster.url, { localAddress: '127.0.0.23', headers: { 'x-forwarded-for': '203.0.113.9' } });
  const admin = new Client(cluster.url, { localAddress: '127.0.0.24' });
  try {
    assert.ok(await client.login(user.email, user.password), 'the user signs in');
    assert.ok(await admin.login(demoAdmin().email, demoAdmin().password), 'the admin signs in');
    const dashboard = await admin.request('GET', '/admin');
    assert.equal(dashboard.status, 200);
    assert.ok(dashboard.text.includes(user.email), 'the dashboard lists the user');
    // The instances see nginx (127.0.0.1) as their peer: 127.0.0.23 comes from its header.
    assert.match(dashboard.text, /· 127\.0\.0\.23\b/, 'the session shows the address nginx saw');
    assert.doesNotMatch(dashboard.text, /203\.0\.113\.9/, 'the forged address is nowhere');
  } finally {
    client.close();
    admin.close();
  }
});

clusterTest('a tab whose stream is on one instance is signed out by Universal Logout sent straight to another', async ({ t, device }) => {
  const { cluster } = env;
  await cluster.waitForStreams(0);
  const user = await newUser('cross-instance');
  const tab = await signInTab(await device(), cluster.url, user);
  const counts = await cluster.waitForStreams(1);
  const holder = counts.indexOf(1) + 1;
  const other = cluster.instances.find((i) => i !== holder);
  t.diagnostic(`the stream is on instance ${holder}; Universal Logout goes to instance ${other}`);
  t.diagnostic(await expectSignedOutLive(tab, 'the tab', () => revoke(cluster.instanceUrl(other), user.email)));
});

clusterTest("killing the instance that holds a tab's stream: the tab reconnects to another, and a revocation sent meanwhile signs it out", async ({ t, device }) => {
  const { cluster } = env;
  await cluster.waitForStreams(0);
  const [survivor, revoked] = await Promise.all([newUser('survivor'), newUser('revoked-meanwhile')]);
  const survivorTab = await signInTab(await device(), cluster.url, survivor);
  const revokedTab = await signInTab(await device(), cluster.url, revoked);
  const counts = await cluster.waitForStreams(2);
  const holders = cluster.instances.filter((i) => counts[i - 1] > 0); // one or two of the three
  await watchForSignOut({ 'the revoked tab': revokedTab }, 'expired');
  try {
    // Chromium waits 3 s before it reconnects a dropped EventSource: the window in which the
    // revocation below is sent. (A SIGKILLed instance's sockets close once it is gone.)
    const killedAt = Date.now();
    await Promise.all(holders.map((i) => cluster.kill(i, 'SIGKILL')));
    const goneAfter = Date.now() - killedAt;
    // Sent while neither tab has a stream anywhere (nginx sends it to a live instance).
    const response = await revoke(cluster.url, revoked.email);
    assert.equal(response.status, 204, await response.text());
    const answeredAfter = Date.now() - killedAt;
    assert.equal(total(await cluster.streams()), 0, 'no tab had reconnected when the revocation was answered');

    // The surviving session's tab reconnects, through nginx, to an instance that is alive.
    const now = await cluster.waitForStreams(1, { timeout: RECONNECT_WITHIN_MS });
    const reconnectedAfter = Date.now() - killedAt;
    const newHolder = now.findIndex((n) => n === 1) + 1;
    assert.ok(!holders.includes(newHolder), `the stream moved to a live instance (now on ${newHolder})`);
    await waitForLiveStream(survivorTab);

    // The revoked session's tab finds out when it reconnects.
    const where = await waitForSignedOut(revokedTab, 'expired', { deadline: Date.now() + RECONNECT_WITHIN_MS });
    const signedOutAfter = Date.now() - killedAt;
    await revokedTab.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('reason') === 'expired');
    assert.equal(await revokedTab.getByRole('heading', { name: 'Your todos' }).count(), 0, 'the revoked tab shows no todos');
    await expectStillSignedIn(survivorTab, survivor.email, 'the surviving tab');
    t.diagnostic(`killed instance(s) ${holders} (gone after ${goneAfter} ms); revocation answered after ${answeredAfter} ms; the surviving `
      + `tab reconnected to instance ${newHolder} after ${reconnectedAfter} ms; the revoked tab was signed `
      + `out (${where}) after ${signedOutAfter} ms`);
  } finally {
    await cluster.up(); // the killed instances start again
  }
});

clusterTest('a rolling restart under page views and revocations fails no request the client did not retry, accepts no revoked session and loses no todo', async ({ t, device }) => {
  const { cluster } = env;
  await cluster.waitForStreams(0);
  const users = await Promise.all([0, 1, 2, 3].map((i) => newUser(`rolling-${i}`)));
  const watched = await newUser('rolling-tab');
  const tab = await signInTab(await device(), cluster.url, watched);

  const load = startLoad({ url: cluster.url, users, apiKey: env.demo.api_key });
  const { stats, acknowledged } = load;
  await sleep(500); // the load is under way
  const started = Date.now();
  try {
    await cluster.restart();
  } finally {
    await sleep(500); // and goes on a little after the last instance is back
    await load.stop();
  }
  const restartedAfter = Date.now() - started;

  t.diagnostic(`rolling restart of ${cluster.instances.length} instances took ${restartedAfter} ms under load: `
    + `${stats.requests} requests, ${stats.retries.length} retried, ${stats.signIns} sign-ins, `
    + `${stats.revocations} revocations, ${[...acknowledged.values()].flat().length} todos acknowledged`);
  if (stats.retries.length) {
    t.diagnostic(`retried: ${stats.retries.slice(0, 10).join('; ')}`);
    // Why nginx answered 502 (a refused connection is not one: nginx moves on from it).
    const why = cluster.nginxErrors().split('\n')
      .filter((l) => /\[error\]/.test(l) && !/Connection refused|GET \/events /.test(l));
    t.diagnostic(`nginx: ${why.slice(-5).join(' | ') || 'nothing logged'}`);
  }
  assert.deepEqual(stats.failures, [], 'requests that failed although retried');
  // A stopping instance drains first (503 on /healthz and /events, connections closed after each
  // response), so nginx never sends a request on a connection the instance is closing: no
  // request, not even a POST, needs the client to retry.
  assert.deepEqual(stats.retries, [], 'requests the client had to retry');
  assert.deepEqual(stats.violations, [], 'requests that succeeded with a revoked session');
  assert.ok(stats.revocations >= 5, `only ${stats.revocations} revocations were made`);
  assert.ok(stats.signIns > users.length, 'revoked users signed in again');

  for (const user of users) { // every acknowledged todo is there
    const client = new Client(cluster.url);
    try {
      assert.ok(await client.login(user.email, user.password));
      const list = await client.request('GET', '/todos');
      assert.equal(list.status, 200);
      const missing = acknowledged.get(user.email).filter((title) => !list.text.includes(title));
      assert.deepEqual(missing, [], `${user.email}'s acknowledged todos missing after the restart`);
    } finally {
      client.close();
    }
  }

  // The tab open through the restart has its stream back, and is still signed out live.
  await cluster.waitForStreams(1);
  await waitForLiveStream(tab);
  t.diagnostic(await expectSignedOutLive(tab, 'the tab open during the restart', () => revoke(cluster.url, watched.email)));
});

clusterTest('after PostgreSQL restarts, every instance listens again and tabs are signed out live', async ({ t, device }) => {
  const { cluster, pg } = env;
  await cluster.waitForStreams(0);
  const user = await newUser('pg-restart');
  const tab = await signInTab(await device(), cluster.url, user);
  const holder = (await cluster.waitForStreams(1)).indexOf(1) + 1;
  const reconnects = () => Promise.all(cluster.instances.map((i) => cluster.metric(i, 'ual_todo_listen_reconnects_total')));
  const before = await reconnects();

  const restartedAt = Date.now();
  await pg.restart();
  // Every instance's listening connection dropped and is back, and /healthz says so.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [now, health] = await Promise.all([reconnects(), Promise.all(cluster.instances.map(async (i) => {
      const response = await fetch(`${cluster.instanceUrl(i)}/healthz`).catch(() => null);
      return response?.status === 200 && (await response.json()).listener === 'ok';
    }))]);
    if (now.every((n, i) => n > before[i]) && health.every(Boolean)) break;
    assert.ok(Date.now() < deadline, `after 20 s: reconnects ${before} → ${now}, healthy ${health}`);
    await sleep(100);
  }
  const recoveredAfter = Date.now() - restartedAt;

  // Pages work again through nginx, and the tab's stream (which never needed the database) is
  // still there; a revocation on another instance reaches it through the new listeners.
  const retries = { count: 0 };
  const client = new Client(cluster.url);
  try {
    assert.ok(await client.login(user.email, user.password), 'signing in works again');
    assert.equal((await client.request('GET', '/todos')).status, 200, 'the todo list works again');
  } finally {
    client.close();
  }
  await waitForLiveStream(tab);
  const other = cluster.instances.find((i) => i !== holder);
  const told = await expectSignedOutLive(tab, 'the tab', () => revoke(cluster.instanceUrl(other), user.email, retries));
  t.diagnostic(`every listener was back ${recoveredAfter} ms after the restart began; stream on instance `
    + `${holder}, revocation to instance ${other} (${retries.count} retries): ${told}`);
  assert.equal(path(tab), '/login');
});
