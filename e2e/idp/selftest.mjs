// Self-test for provider.mjs: code flow + PKCE with plain fetch (no JS, manual
// redirects, hand-kept cookie jar), RP-initiated logout with back-channel
// delivery, and /test/sign. Run: node e2e/idp/selftest.mjs
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

import * as jose from 'jose';

const CLIENT_ID = 'acme-app';
const CLIENT_SECRET = 'acme-secret';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
let failures = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures += 1;
}

// --- a tiny "app": receives the redirect target (unused) and back-channel POSTs
const logoutPosts = [];
const app = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  if (req.method === 'POST' && req.url === '/backchannel-logout') {
    logoutPosts.push({ type: req.headers['content-type'], body: Buffer.concat(chunks).toString() });
  }
  res.writeHead(200).end();
});
await new Promise((r) => { app.listen(0, '127.0.0.1', r); });
const appBase = `http://127.0.0.1:${app.address().port}`;
const redirectUri = `${appBase}/auth/oidc/callback`;

// --- start the provider
const idp = spawn(process.execPath, [fileURLToPath(new URL('./provider.mjs', import.meta.url))], {
  env: {
    ...process.env,
    IDP_CONFIG: JSON.stringify({
      port: 0,
      clients: [{
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [redirectUri],
        post_logout_redirect_uris: [`${appBase}/login`],
        backchannel_logout_uri: `${appBase}/backchannel-logout`,
      }],
      accounts: { 'alice@acme.test': { sub: '00u-alice', email: 'alice@acme.test', email_verified: true } },
    }),
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const stdoutLines = [];
const { issuer } = await new Promise((resolve, reject) => {
  idp.on('exit', (code) => reject(new Error(`provider exited early (${code})`)));
  createInterface({ input: idp.stdout }).on('line', (line) => {
    stdoutLines.push(line);
    if (stdoutLines.length === 1) resolve(JSON.parse(line));
  });
});
check(/^http:\/\/127\.0\.0\.1:\d+$/.test(issuer), `ready line ${stdoutLines[0]}`);

// --- cookie jar kept by hand, as a plain HTTP client would
const jar = new Map();
async function request(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(new URL(url, issuer), { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const [name, value] = pair.split('=');
    if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') jar.delete(name); else jar.set(name, value);
  }
  return res;
}
const b64url = (buf) => buf.toString('base64url');

try {
  const discovery = await (await request('/.well-known/openid-configuration')).json();
  check(discovery.issuer === issuer, 'discovery issuer');
  check(discovery.jwks_uri && discovery.end_session_endpoint, 'discovery jwks_uri, end_session_endpoint');
  check(discovery.backchannel_logout_supported === true && discovery.backchannel_logout_session_supported === true,
    'discovery backchannel_logout(_session)_supported');

  // 1. GET authorize (PKCE S256, state, nonce) -> 303 /interaction/<uid>
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(8));
  const nonce = b64url(randomBytes(8));
  const authz = new URL(discovery.authorization_endpoint);
  Object.entries({
    client_id: CLIENT_ID, response_type: 'code', scope: 'openid email', redirect_uri: redirectUri,
    state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
  }).forEach(([k, v]) => authz.searchParams.set(k, v));
  let res = await request(authz);
  const interactionPath = res.headers.get('location');
  check(res.status === 303 && /^\/interaction\/[\w-]+$/.test(interactionPath), `authorize -> ${res.status} ${interactionPath}`);

  // 2. GET the login page
  res = await request(interactionPath);
  const html = await res.text();
  const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
  check(res.status === 200 && action === `${issuer}${interactionPath}` && /name="login"/.test(html) && /name="password"/.test(html),
    `login page 200, form action ${action}`);

  // 3. POST the login form -> 303 /auth/<uid> -> 303 redirect_uri?code&state
  res = await request(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ prompt: 'login', login: 'alice@acme.test', password: 'x' }),
  });
  const resumePath = res.headers.get('location');
  check(res.status === 303 && resumePath?.startsWith(`${issuer}/auth/`), `login POST -> ${res.status} ${resumePath}`);
  res = await request(resumePath);
  const callback = new URL(res.headers.get('location') ?? 'about:blank');
  check(res.status === 303 && callback.href.startsWith(redirectUri), `resume -> ${res.status} ${callback.origin}${callback.pathname}`);
  check(callback.searchParams.get('state') === state && callback.searchParams.get('code'), 'callback carries code and state');
  check(callback.searchParams.get('iss') === issuer, 'callback carries iss');

  // 4. token endpoint, client_secret_basic
  res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: callback.searchParams.get('code'),
      redirect_uri: redirectUri, code_verifier: verifier,
    }),
  });
  const tokens = await res.json();
  check(res.status === 200 && tokens.id_token, `token endpoint ${res.status}`);
  const jwks = jose.createRemoteJWKSet(new URL(discovery.jwks_uri));
  const { payload: idt, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, { issuer, audience: CLIENT_ID });
  check(protectedHeader.alg === 'RS256' && protectedHeader.kid, `id_token RS256 kid=${protectedHeader.kid}`);
  check(idt.sub === '00u-alice', `id_token sub=${idt.sub}`);
  check(idt.email === 'alice@acme.test' && idt.email_verified === true, `id_token email=${idt.email}`);
  check(typeof idt.sid === 'string' && idt.nonce === nonce, `id_token sid=${idt.sid}, nonce matches`);

  // 5. RP-initiated logout: GET end_session -> confirm page -> POST confirm logout=yes
  const endSession = new URL(discovery.end_session_endpoint);
  endSession.searchParams.set('id_token_hint', tokens.id_token);
  endSession.searchParams.set('post_logout_redirect_uri', `${appBase}/login`);
  endSession.searchParams.set('state', 'bye');
  res = await request(endSession);
  const logoutHtml = await res.text();
  const confirmAction = logoutHtml.match(/<form id="op.logoutForm" method="post" action="([^"]+)"/)?.[1];
  const xsrf = logoutHtml.match(/name="xsrf" value="([^"]+)"/)?.[1];
  check(res.status === 200 && confirmAction === `${issuer}/session/end/confirm` && xsrf, `end_session page, form -> ${confirmAction}`);
  res = await request(confirmAction, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
  check(res.status === 303 && res.headers.get('location') === `${appBase}/login?state=bye`,
    `confirm -> ${res.status} ${res.headers.get('location')}`);

  // The provider awaits back-channel calls before redirecting.
  check(logoutPosts.length === 1, `app received ${logoutPosts.length} back-channel POST(s)`);
  const post = logoutPosts[0] ?? { body: '' };
  check(post.type === 'application/x-www-form-urlencoded', `back-channel content-type ${post.type}`);
  const logoutToken = new URLSearchParams(post.body).get('logout_token');
  const { payload: lt } = await jose.jwtVerify(logoutToken ?? '', jwks, { issuer, audience: CLIENT_ID });
  check(lt.sub === '00u-alice' && lt.sid === idt.sid, `logout_token sub=${lt.sub} sid matches id_token`);
  check(lt.events && BACKCHANNEL_EVENT in lt.events, 'logout_token events has back-channel-logout event');
  check(lt.jti && lt.iat && !('nonce' in lt), 'logout_token has jti, iat and no nonce');

  // 6. test-only back-channel trigger (no provider session needed)
  res = await fetch(`${issuer}/test/backchannel-logout`, {
    method: 'POST', body: JSON.stringify({ client_id: CLIENT_ID, sub: 'sub-bob', sid: 'sid-123' }),
  });
  const lt2 = logoutPosts[1] && jose.decodeJwt(new URLSearchParams(logoutPosts[1].body).get('logout_token'));
  check(res.status === 204 && lt2?.sub === 'sub-bob' && lt2?.sid === 'sid-123', '/test/backchannel-logout delivered');

  // 7. /test/sign: JWT signed by the provider's published key
  res = await fetch(`${issuer}/test/sign`, {
    method: 'POST',
    body: JSON.stringify({ header: { typ: 'global-token-revocation+jwt' }, payload: { iss: issuer, sub_id: { format: 'email', email: 'alice@acme.test' } } }),
  });
  const signed = await res.text();
  const { payload: sp, protectedHeader: sh } = await jose.jwtVerify(signed, jwks);
  check(res.status === 200 && sp.sub_id?.email === 'alice@acme.test' && sh.typ === 'global-token-revocation+jwt'
    && sh.kid === protectedHeader.kid, '/test/sign verifies against jwks_uri (same kid as id_token)');

  // 8. an ad-hoc login maps to sub-<login>
  jar.clear();
  res = await request(authz);
  const uid2 = res.headers.get('location');
  await request(uid2);
  res = await request(uid2, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'prompt=login&login=bob&password=pw' });
  res = await request(res.headers.get('location'));
  const code2 = new URL(res.headers.get('location')).searchParams.get('code');
  res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code2, redirect_uri: redirectUri, code_verifier: verifier }),
  });
  const idt2 = jose.decodeJwt((await res.json()).id_token);
  check(idt2.sub === 'sub-bob' && idt2.email === 'bob@example.test', `ad-hoc login: sub=${idt2.sub} email=${idt2.email}`);
} catch (err) {
  check(false, `unexpected error: ${err.stack}`);
}

// --- shut down: SIGTERM must make the provider exit 0
const exitCode = await new Promise((resolve) => {
  idp.removeAllListeners('exit');
  idp.on('exit', (code) => resolve(code));
  idp.kill('SIGTERM');
});
check(exitCode === 0, `provider exit code after SIGTERM: ${exitCode}`);
check(stdoutLines.length === 1, `provider printed ${stdoutLines.length} stdout line(s)`);
app.close();

console.log(failures ? `\nselftest FAILED: ${failures} check(s)` : '\nselftest passed');
process.exit(failures ? 1 : 0);
