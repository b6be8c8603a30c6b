// A Shared Signals transmitter for ual-todo's tests (SSF 1.0, RFC 8935 push, RFC 8936 poll).
// Node's standard library only. For tests: it signs whatever /test/* is given.
//
//   SSF_CONFIG='{"port":0,"bearers":["tx-secret"],"path":""}' node e2e/ssf/transmitter.mjs
//
// Prints one line when ready: {"issuer":"http://127.0.0.1:PORT[/path]"}. See README.md.

import { createServer } from 'node:http';
import { generateKeyPairSync, createSign, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

const config = JSON.parse(process.env.SSF_CONFIG || '{}');
const bearers = new Set(config.bearers || ['tx-secret']);
const path = (config.path || '').replace(/\/$/, '');
const longPollMs = config.long_poll_ms ?? 2000;
const examples = JSON.parse(readFileSync(new URL('./examples.json', import.meta.url)));

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';
const SUPPORTED = [
  CAEP + 'session-revoked', CAEP + 'credential-change', RISC + 'account-disabled',
  RISC + 'account-enabled', RISC + 'account-purged', RISC + 'identifier-changed',
  SSF + 'verification', SSF + 'stream-updated',
];
const PUSH = 'urn:ietf:rfc:8935';
const POLL = 'urn:ietf:rfc:8936';

function newKey() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = 'tx-' + randomBytes(4).toString('hex');
  return { kid, privateKey, jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}
const published = newKey();
// Signs forgeries: the same kid as the published key, another key.
const unpublished = { ...newKey(), kid: published.kid };

const b64 = (data) => Buffer.from(data).toString('base64url');

function sign(header, payload, { key = 'published', alg, secret } = {}) {
  const signer = key === 'unpublished' ? unpublished : published;
  const head = { kid: signer.kid, typ: 'secevent+jwt', ...header, alg: alg || 'RS256' };
  for (const [k, v] of Object.entries(head)) if (v === null) delete head[k];
  const input = `${b64(JSON.stringify(head))}.${b64(typeof payload === 'string' ? payload : JSON.stringify(payload))}`;
  if (head.alg === 'none') return `${input}.`;
  if (head.alg === 'HS256') return `${input}.${createHmac('sha256', secret || '').update(input).digest('base64url')}`;
  const s = createSign('RSA-SHA256');
  s.update(input);
  return `${input}.${s.sign(signer.privateKey).toString('base64url')}`;
}

let issuer = '';
const streams = new Map(); // stream_id -> { config, status, queue: Map(jti -> SET), acks: [], errs: {} }
// `management`: "METHOD /route" of each authorized call; `requests`: the same with the stream id
// and body the receiver sent (what tests assert stream updates on).
const log = { acks: [], setErrs: {}, polls: 0, pushes: [], management: [], requests: [] };

/// An example's payload with `vars` put at the paths the example names (its subject
/// identifiers); a variable the example does not name is an error, so no test passes one in vain.
function substitute(example, vars) {
  const payload = structuredClone(example.payload);
  for (const [name, value] of Object.entries(vars)) {
    const path = example.vars?.[name];
    if (!path) throw new Error(`the example has no variable ${name} (it has: ${Object.keys(example.vars || {}).join(', ')})`);
    let at = payload;
    for (const key of path.slice(0, -1)) at = at[key];
    at[path.at(-1)] = value;
  }
  return payload;
}

function only(id) {
  if (id) return streams.get(id);
  return [...streams.values()].at(-1);
}

/// The claims a SET for `stream` carries, over `payload` (which may override any).
function setFor(stream, payload, { iatMs = false } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: issuer, aud: stream?.config.aud, iat: iatMs ? now * 1000 : now, jti: randomUUID(), ...payload };
}

async function push(stream, token, authorization) {
  const delivery = stream.config.delivery;
  const started = Date.now();
  try {
    const response = await fetch(delivery.endpoint_url, {
      method: 'POST',
      headers: {
        'content-type': 'application/secevent+jwt',
        accept: 'application/json',
        ...(authorization ?? delivery.authorization_header ? { authorization: authorization ?? delivery.authorization_header } : {}),
      },
      body: token,
    });
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
    log.pushes.push({ status: response.status, ms: Date.now() - started });
    return { status: response.status, body };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

/// Delivers a signed SET: pushed (the receiver's answer returned) or queued for polling.
async function deliver(stream, token, jti, authorization) {
  if (stream.config.delivery.method === POLL) {
    stream.queue.set(jti, token);
    wake(stream);
    return { queued: true, jti };
  }
  return { jti, ...(await push(stream, token, authorization)) };
}

const waiters = new Map(); // stream_id -> [resolve]
function wake(stream) {
  for (const resolve of waiters.get(stream.config.stream_id) || []) resolve();
  waiters.set(stream.config.stream_id, []);
}

function json(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

function authorized(req) {
  const header = req.headers.authorization || '';
  const [scheme, token] = header.split(' ');
  return scheme?.toLowerCase() === 'bearer' && bearers.has(token);
}

function configuration() {
  return {
    spec_version: '1_0',
    issuer,
    jwks_uri: `${issuer}/jwks`,
    delivery_methods_supported: [PUSH, POLL],
    configuration_endpoint: `${issuer}/streams`,
    status_endpoint: `${issuer}/streams/status`,
    verification_endpoint: `${issuer}/verify`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
  };
}

function streamConfig(body, id) {
  const delivery = { ...(body.delivery || { method: POLL }) };
  if (delivery.method === POLL) delivery.endpoint_url = `${issuer}/poll/${id}`;
  const requested = body.events_requested || [];
  return {
    stream_id: id,
    iss: issuer,
    aud: body.aud || `urn:ual-todo:receiver:${id}`,
    delivery,
    events_supported: SUPPORTED,
    events_requested: requested,
    events_delivered: requested.filter((e) => SUPPORTED.includes(e)),
    description: body.description,
  };
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try { return JSON.parse(text); } catch { return { _text: text }; }
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  let route = url.pathname;
  const wellKnown = `/.well-known/ssf-configuration${path}`;
  if (route === wellKnown || (config.risc_only && route === `/.well-known/risc-configuration${path}`)) {
    if (config.risc_only && route === wellKnown) return json(res, 404, { error: 'not_found' });
    return json(res, 200, { ...configuration(), ...(config.configuration_patch || {}) });
  }
  if (!route.startsWith(path + '/')) return json(res, 404, { error: 'not_found' });
  route = route.slice(path.length);
  const body = ['POST', 'PUT', 'PATCH'].includes(req.method) ? await readBody(req) : {};

  if (route === '/jwks' && req.method === 'GET') return json(res, 200, { keys: [published.jwk] });

  if (route.startsWith('/test/')) return test(route, body, res);

  if (!authorized(req)) return json(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
  log.management.push(`${req.method} ${route}`);
  log.requests.push({
    method: req.method, route, stream_id: url.searchParams.get('stream_id') || body.stream_id || null,
    ...(Object.keys(body).length ? { body } : {}),
  });

  if (route === '/streams') {
    const id = url.searchParams.get('stream_id') || body.stream_id;
    if (req.method === 'POST') {
      const streamId = randomUUID();
      const stream = { config: streamConfig(body, streamId), status: 'enabled', queue: new Map() };
      streams.set(streamId, stream);
      return json(res, 201, stream.config);
    }
    if (req.method === 'GET') {
      if (!id) return json(res, 200, [...streams.values()].map((s) => s.config));
      const stream = streams.get(id);
      return stream ? json(res, 200, stream.config) : json(res, 404, { error: 'not_found' });
    }
    const stream = streams.get(id);
    if (!stream) return json(res, 404, { error: 'not_found' });
    if (req.method === 'PATCH' || req.method === 'PUT') return update(req.method, stream, body, res);
    if (req.method === 'DELETE') {
      streams.delete(id);
      res.writeHead(204).end();
      return;
    }
  }
  if (route === '/streams/status') {
    // SSF 1.0 §8.1.2.1 (GET ?stream_id=) and §8.1.2.2 (POST); `status_delay_ms` slows reads.
    const id = url.searchParams.get('stream_id') || body.stream_id;
    const stream = streams.get(id);
    if (!stream) return json(res, 404, { error: 'not_found' });
    if (req.method === 'POST') {
      if (!['enabled', 'paused', 'disabled'].includes(body.status)) return json(res, 400, { error: 'invalid_request' });
      stream.status = body.status;
      stream.reason = body.reason;
    } else if (config.status_delay_ms) {
      await new Promise((resolve) => setTimeout(resolve, config.status_delay_ms));
    }
    return json(res, 200, { stream_id: id, status: stream.status, ...(stream.reason ? { reason: stream.reason } : {}) }, { 'cache-control': 'no-store' });
  }
  if (route === '/verify' && req.method === 'POST') {
    const stream = streams.get(body.stream_id);
    if (!stream) return json(res, 404, { error: 'not_found' });
    res.writeHead(204).end();
    const payload = setFor(stream, {
      sub_id: { format: 'opaque', id: body.stream_id },
      events: { [SSF + 'verification']: body.state === undefined ? {} : { state: body.state } },
    });
    setTimeout(() => deliver(stream, sign({}, payload), payload.jti), 10);
    return;
  }
  const poll = route.match(/^\/poll\/([^/]+)$/);
  if (poll && req.method === 'POST') {
    const stream = streams.get(poll[1]);
    if (!stream) return json(res, 404, { error: 'not_found' });
    log.polls += 1;
    for (const jti of body.ack || []) {
      stream.queue.delete(jti);
      log.acks.push(jti);
    }
    for (const [jti, err] of Object.entries(body.setErrs || {})) {
      stream.queue.delete(jti);
      log.setErrs[jti] = err;
    }
    const max = body.maxEvents ?? 100;
    if (max > 0 && stream.queue.size === 0 && !body.returnImmediately) {
      await new Promise((resolve) => {
        const list = waiters.get(poll[1]) || [];
        list.push(resolve);
        waiters.set(poll[1], list);
        setTimeout(resolve, longPollMs);
      });
    }
    const sets = Object.fromEntries([...stream.queue.entries()].slice(0, max));
    return json(res, 200, { sets, moreAvailable: stream.queue.size > Object.keys(sets).length });
  }
  return json(res, 404, { error: 'not_found' });
}

const RECEIVER_SUPPLIED = ['events_requested', 'delivery', 'description'];
const TRANSMITTER_SUPPLIED = ['iss', 'aud', 'events_supported', 'events_delivered'];

/// SSF 1.0 §8.1.1.3 (PATCH: the Receiver-Supplied members sent change, the others stay) and
/// §8.1.1.4 (PUT: the full set; one missing is deleted). Transmitter-Supplied members may be
/// sent but must match (else 400); the stream id never changes. `patch_unsupported` answers
/// PATCH with 405, as a transmitter that only replaces would.
function update(method, stream, body, res) {
  if (method === 'PATCH' && config.patch_unsupported) return json(res, 405, { error: 'method_not_allowed' }, { allow: 'GET, POST, PUT, DELETE' });
  for (const name of TRANSMITTER_SUPPLIED) {
    if (body[name] !== undefined && JSON.stringify(body[name]) !== JSON.stringify(stream.config[name])) {
      return json(res, 400, { error: 'invalid_request', description: `${name} cannot change` });
    }
  }
  const given = Object.fromEntries(RECEIVER_SUPPLIED.filter((n) => body[n] !== undefined).map((n) => [n, body[n]]));
  const kept = method === 'PATCH'
    ? Object.fromEntries(RECEIVER_SUPPLIED.map((n) => [n, stream.config[n]]))
    : {};
  const id = stream.config.stream_id;
  stream.config = streamConfig({ ...kept, ...given, aud: stream.config.aud }, id);
  if (stream.config.description === undefined) delete stream.config.description;
  return json(res, 200, stream.config);
}

/// The test helpers: sign, send an event or an example, push a raw token, read the log.
async function test(route, body, res) {
  const stream = only(body.stream_id);
  if (route === '/test/sign') {
    res.writeHead(200, { 'content-type': 'application/jwt' });
    return res.end(sign(body.header || {}, body.payload, body));
  }
  if (route === '/test/event' || route === '/test/example') {
    if (!stream) return json(res, 404, { error: 'no stream' });
    let payload;
    let iatMs = false;
    if (route === '/test/example') {
      const example = examples[body.name];
      if (!example?.payload) return json(res, 404, { error: `no example ${body.name}` });
      let filled;
      try {
        filled = substitute(example, body.vars || {});
      } catch (e) {
        return json(res, 400, { error: e.message });
      }
      const { iss, aud, iat, jti, ...rest } = filled;
      payload = rest;
      iatMs = body.iat_ms === true;
    } else {
      payload = { events: { [body.event_type]: body.event || {} }, ...(body.sub_id ? { sub_id: body.sub_id } : {}) };
    }
    const claims = { ...setFor(stream, payload, { iatMs }), ...(body.claims || {}) };
    for (const [k, v] of Object.entries(claims)) if (v === null) delete claims[k];
    const token = sign(body.header || {}, claims, body);
    return json(res, 200, { token, ...(await deliver(stream, token, claims.jti, body.authorization)) });
  }
  if (route === '/test/queue') {
    if (!stream) return json(res, 404, { error: 'no stream' });
    stream.queue.set(body.jti, body.token);
    wake(stream);
    return json(res, 200, { queued: true, jti: body.jti });
  }
  if (route === '/test/push') {
    if (!stream) return json(res, 404, { error: 'no stream' });
    return json(res, 200, await push(stream, body.token, body.authorization));
  }
  if (route === '/test/status') {
    // The transmitter changes a stream's status on its own (what a Stream Updated event announces).
    if (!stream) return json(res, 404, { error: 'no stream' });
    stream.status = body.status;
    stream.reason = body.reason;
    return json(res, 200, { stream_id: stream.config.stream_id, status: stream.status });
  }
  if (route === '/test/state') {
    return json(res, 200, {
      streams: [...streams.values()].map((s) => ({ ...s.config, status: s.status, queued: [...s.queue.keys()] })),
      ...log,
    });
  }
  return json(res, 404, { error: 'not_found' });
}

const server = createServer((req, res) => {
  handle(req, res).catch((e) => {
    process.stderr.write(`ssf: ${e.stack}\n`);
    if (!res.headersSent) json(res, 500, { error: String(e) });
  });
});
server.keepAliveTimeout = 60_000;
server.on('error', (e) => {
  process.stderr.write(`ssf: ${e.message}\n`);
  process.exit(1);
});
server.listen(config.port ?? 0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}${path}`;
  process.stdout.write(JSON.stringify({ issuer }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
// A test process that keeps the transmitter for its whole run (in a static, never dropped) gives
// it a pipe as stdin: the transmitter ends with it rather than outliving the tests.
if (config.exit_with_stdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
