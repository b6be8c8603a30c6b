// Steady traffic for the cluster tests: people browsing and adding todos while an identity
// provider signs them out in turn, with a record of every answer that was wrong.

import { randomBytes } from 'node:crypto';
import { Client } from './http-client.mjs';

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/**
 * Starts the load on `url`: each of `users` (from its own 127.0.0.x address) signs in, views its
 * list and adds a todo, again and again, signing in again when its session ends; meanwhile an
 * identity provider sends Universal Logout (with `apiKey`) for each user in turn. A request
 * answered 502/503/504 or failing on the network is retried (a POST /todos only after checking
 * that the todo is not there yet); one still failing after 5 retries is a failure. A request sent
 * after a revocation of its session was answered 204, and not refused, is a violation.
 * Returns { stats, acknowledged (email → titles), stop() } (stop() resolves once all is done).
 */
export function startLoad({ url, users, apiKey }) {
  const stats = { requests: 0, retries: [], failures: [], violations: [], revocations: 0, signIns: 0 };
  const acknowledged = new Map(users.map((u) => [u.email, []]));
  const sessions = new Map(); // email → { issuedAt, revokedAt } of the client's current cookie
  let running = true; // until stop()

  /** Runs `send` until it gets an answer other than 502/503/504 (up to 5 retries). */
  async function attempt(what, send) {
    for (let retry = 0; ; retry++) {
      stats.requests++;
      let outcome;
      try {
        const response = await send(retry);
        if (![502, 503, 504].includes(response.status)) return response;
        outcome = `answered ${response.status}`;
      } catch (error) {
        outcome = error.message;
      }
      if (retry === 5) {
        stats.failures.push(`${what}: ${outcome}, after ${retry} retries`);
        return null;
      }
      stats.retries.push(`${what}: ${outcome}`);
      await sleep(100 * (retry + 1));
    }
  }

  /** One person: signs in, views the list, adds todos, signs in again when revoked. */
  async function browse(user, k) {
    const client = new Client(url, { localAddress: `127.0.0.${40 + k}` });
    let n = 0;
    try {
      while (running) {
        const session = sessions.get(user.email);
        if (!session) {
          const signIn = await attempt('sign-in', () => client.request('POST', '/login', { form: { email: user.email, password: user.password } }));
          if (signIn?.status === 303 && signIn.location === '/todos') {
            sessions.set(user.email, { issuedAt: Date.now(), revokedAt: null });
            stats.signIns++;
          } else if (signIn) stats.failures.push(`sign-in answered ${signIn.status} → ${signIn.location}`);
          continue;
        }
        const viewSent = Date.now();
        const view = await attempt('GET /todos', () => client.request('GET', '/todos'));
        if (!view) continue;
        if (view.status === 303 && view.location === '/login') {
          sessions.delete(user.email);
          continue;
        }
        if (view.status !== 200) stats.failures.push(`GET /todos answered ${view.status}`);
        else if (session.revokedAt !== null && viewSent > session.revokedAt) {
          stats.violations.push(`GET /todos sent ${viewSent - session.revokedAt} ms after a revocation's 204 was answered 200`);
        }

        const title = `rolling-${k}-${n++}-${randomBytes(2).toString('hex')}`;
        const addSent = Date.now();
        // A retried POST first looks whether the first one took effect (nginx never re-sends it).
        const added = await attempt('POST /todos', async (retry) => {
          if (retry > 0) {
            const list = await client.request('GET', '/todos');
            if (list.status === 200 && list.text.includes(title)) return { status: 303, location: '/todos' };
          }
          return client.request('POST', '/todos', { form: { title } });
        });
        if (!added) continue;
        if (added.status === 303 && added.location === '/todos') {
          acknowledged.get(user.email).push(title);
          if (session.revokedAt !== null && addSent > session.revokedAt) {
            stats.violations.push(`POST /todos sent ${addSent - session.revokedAt} ms after a revocation's 204 was accepted`);
          }
        } else if (added.status === 303 && added.location === '/login') {
          sessions.delete(user.email);
        } else {
          stats.failures.push(`POST /todos answered ${added.status} → ${added.location}`);
        }
      }
    } finally {
      client.close();
    }
  }

  /** The identity provider: Universal Logout for each user in turn, through nginx. */
  async function revokeInTurn() {
    const idp = new Client(url, { localAddress: '127.0.0.60', headers: { authorization: `Bearer ${apiKey}` } });
    try {
      for (let k = 0; running; k++) {
        const user = users[k % users.length];
        const session = sessions.get(user.email);
        const sentAt = Date.now();
        const response = await attempt('Universal Logout', () => idp.request('POST', '/global-token-revocation', {
          json: { sub_id: { format: 'email', email: user.email } },
        }));
        if (response?.status === 204) {
          stats.revocations++;
          // A session signed in before the request was sent is certainly ended by its 204.
          if (session && session.issuedAt < sentAt) session.revokedAt ??= Date.now();
        } else if (response) stats.failures.push(`Universal Logout answered ${response.status}: ${response.text}`);
        await sleep(100);
      }
    } finally {
      idp.close();
    }
  }


  const loops = Promise.all([...users.map(browse), revokeInTurn()]);
  return {
    stats,
    acknowledged,
    async stop() {
      running = false;
      await loops;
    },
  };
}
