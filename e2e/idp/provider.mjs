// Test OpenID Provider for ual-todo's test suites (NOT for production).
// Wraps oidc-provider v9: authorization code + PKCE, RP-initiated logout,
// back-channel logout, plus test-only helpers under /test/*.
// Configuration: IDP_CONFIG (JSON), see README.md. Prints one ready line:
//   {"issuer":"http://127.0.0.1:PORT"}
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { parse as parseQuery } from 'node:querystring';

import * as jose from 'jose';
import Provider from 'oidc-provider';

// oidc-provider prints notices with console.info (= stdout); stdout must carry
// only the ready line, so route them to stderr.
console.info = (...args) => console.error(...args);

function fail(message) {
  console.error(`idp: ${message}`);
  process.exit(1);
}

let config;
try {
  config = JSON.parse(process.env.IDP_CONFIG ?? '');
} catch (err) {
  fail(`IDP_CONFIG must be set to a JSON document: ${err.message}`);
}
const { port = 0, clients = [], accounts = {}, id_token_patch: idTokenPatch } = config;
if (!Array.isArray(clients) || clients.length === 0) fail('IDP_CONFIG.clients must be a non-empty array');

// --- accounts --------------------------------------------------------------
// oidc-provider uses the accountId as the `sub` claim (and as the logout
// token's sub), so sessions are keyed by sub, and the login typed into the
// form is mapped to an account here.
function accountForLogin(login) {
  const configured = accounts[login];
  if (configured) return { sub: login, ...configured };
  return {
    sub: `sub-${login}`,
    email: login.includes('@') ? login : `${login}@example.test`,
    email_verified: true,
  };
}
const accountsBySub = new Map(Object.keys(accounts).map((login) => {
  const account = accountForLogin(login);
  return [account.sub, account];
}));

function findAccountClaims(sub) {
  if (accountsBySub.has(sub)) return accountsBySub.get(sub);
  // Ad-hoc logins get sub = "sub-<login>", so the login can be recovered.
  if (sub.startsWith('sub-')) {
    const account = accountForLogin(sub.slice(4));
    if (account.sub === sub) return account;
  }
  return undefined;
}

// --- signing key -------------------------------------------------------------
// Generated here (not by oidc-provider) so /test/sign can sign with the very
// key the provider publishes at its jwks_uri.
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const kid = `test-${randomBytes(6).toString('hex')}`;
const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };

// --- server + provider -------------------------------------------------------
// The issuer contains the port, so listen first, then build the provider.
let provider;
const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    // oidc-provider errors (e.g. an expired interaction) carry status/error.
    const status = err.status ?? (err instanceof SyntaxError ? 400 : 500);
    if (status >= 500) console.error('idp: request failed:', err);
    if (res.headersSent) return res.end();
    return send(res, status, { error: err.error ?? (status >= 500 ? 'server_error' : 'invalid_request'), error_description: err.error_description ?? err.message });
  });
});
server.on('error', (err) => fail(`server error: ${err.message}`));
await new Promise((resolve) => { server.listen(port, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

provider = new Provider(issuer, {
  clients,
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    // puts `sid` in ID tokens and logout tokens
    backchannel_logout_session_required: true,
  },
  jwks: { keys: [privateJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // Put scope-requested claims (email) into the ID token, not only userinfo.
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  pkce: { required: () => true }, // v9 only supports S256
  features: {
    devInteractions: { enabled: true }, // built-in login page, driven by tests
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  async findAccount(ctx, sub) {
    const claims = findAccountClaims(sub);
    if (!claims) return undefined;
    return { accountId: sub, claims: async () => ({ ...claims, sub }) };
  },
  // Auto-consent: grant whatever scopes/claims are requested, so the consent
  // page never shows and a login is authorize -> login form -> redirect_uri.
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    const grant = (grantId && await oidc.provider.Grant.find(grantId))
      || new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    grant.addOIDCClaims([...oidc.requestParamClaims]);
    await grant.save();
    return grant;
  },
  // oidc-provider's fetch() (used for back-channel logout POSTs) passes an
  // undici `dispatcher` that destroys sockets to special-use addresses,
  // loopback included, so calls to http://127.0.0.1:PORT fail silently
  // (see lib/helpers/fetch_request.js). Drop it: every target is local here.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
});

const handleOidc = provider.callback();

// Static clients are only validated on first use: fail fast at start instead.
try {
  await Promise.all(clients.map(async ({ client_id: id }) => {
    if (!await provider.Client.find(String(id))) throw new Error(`client ${id} not found`);
  }));
} catch (err) {
  fail(`invalid client in IDP_CONFIG: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
}

// Back-channel failures are otherwise only events: make them visible.
provider.on('backchannel.error', (ctx, err, client) => {
  console.error(`idp: back-channel logout to ${client.clientId} failed: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}`);
});
provider.on('server_error', (ctx, err) => console.error('idp: server_error:', err));

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

// Test-only: IDP_CONFIG.id_token_patch rewrites the ID token of every token response (merged
// into its payload, re-signed with the provider's key), so tests can send what a provider
// might: an array `aud`, an old `auth_time`, a `session_expiry`. "$now+N" / "$now-N" are
// seconds from now; null removes a claim.
function patchedClaims(payload) {
  const now = Math.floor(Date.now() / 1000);
  const out = { ...payload };
  for (const [name, value] of Object.entries(idTokenPatch)) {
    const relative = typeof value === 'string' && /^\$now([+-]\d+)$/.exec(value);
    if (value === null) delete out[name];
    else out[name] = relative ? now + Number(relative[1]) : value;
  }
  return out;
}

function patchTokenResponse(res) {
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    let body;
    try {
      body = JSON.parse(Buffer.from(chunk).toString('utf8'));
    } catch {
      return end(chunk, ...rest);
    }
    if (!body.id_token) return end(chunk, ...rest);
    const [header] = body.id_token.split('.');
    const protectedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    const payload = patchedClaims(jose.decodeJwt(body.id_token));
    new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader(protectedHeader)
      .sign(privateKey)
      .then((jws) => {
        const text = JSON.stringify({ ...body, id_token: jws });
        res.setHeader('content-length', Buffer.byteLength(text));
        end(text);
      });
    return res;
  };
}

async function route(req, res) {
  const { pathname } = new URL(req.url, issuer);
  if (idTokenPatch && req.method === 'POST' && pathname === '/token') patchTokenResponse(res);

  // Test-only: sign {header, payload} with the provider's current key.
  if (req.method === 'POST' && pathname === '/test/sign') {
    const { header = {}, payload = {} } = JSON.parse(await readBody(req) || '{}');
    const jws = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ kid, ...header, alg: 'RS256' })
      .sign(privateKey);
    return send(res, 200, jws, 'application/jwt');
  }
  // Test-only: send a back-channel logout token to a client without a
  // provider session (body: {"client_id", "sub", "sid"}).
  if (req.method === 'POST' && pathname === '/test/backchannel-logout') {
    const { client_id: clientId, sub, sid } = JSON.parse(await readBody(req) || '{}');
    const client = await provider.Client.find(String(clientId));
    if (!client) return send(res, 404, { error: 'unknown client_id' });
    if (!client.backchannelLogoutUri) return send(res, 400, { error: 'client has no backchannel_logout_uri' });
    try {
      await client.backchannelLogout(sub, sid);
    } catch (err) {
      return send(res, 502, { error: err.message });
    }
    return send(res, 204, '');
  }
  if (pathname.startsWith('/test/')) return send(res, 404, { error: 'not found' });

  // The dev login form would make the typed login the accountId (= sub);
  // handle its submission here to map login -> configured sub instead.
  if (req.method === 'POST' && /^\/interaction\/[^/]+$/.test(pathname)) {
    const form = parseQuery(await readBody(req));
    if (form.prompt === 'login') {
      if (typeof form.login !== 'string' || !form.login) return send(res, 400, { error: 'login is required' });
      const { sub } = accountForLogin(form.login);
      return provider.interactionFinished(req, res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
    }
    req.body = form; // body already consumed: oidc-provider falls back to req.body
  }
  return handleOidc(req, res);
}

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
