//! A fake identity provider for tests: serves an OpenID discovery document and a JWKS over real
//! HTTP, and signs JWTs with test keys (tests/fixtures/keys).

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk, jwk::JwkSet};
use serde_json::{Value, json};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

/// A signing key of the fake IdP.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
}

/// Reads a test key: `rsa`, `rsa-other`, `ec` or `ed25519`.
pub fn signing_key(file: &str, kid: &str, alg: Algorithm) -> SigningKey {
    let pem = std::fs::read(format!("{KEYS}/{file}.pem")).unwrap();
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    SigningKey {
        kid: kid.to_owned(),
        alg,
        key,
    }
}

/// The public part of the RSA test key, PEM-encoded (what an HS256 forgery would use as secret).
pub fn rsa_public_pem() -> Vec<u8> {
    std::fs::read(format!("{KEYS}/rsa.pub.pem")).unwrap()
}

struct State {
    issuer: String,
    published: Mutex<JwkSet>,
    fetches: AtomicUsize,
    /// More members of the discovery document, `{issuer}` replaced by the issuer.
    discovery: Value,
}

/// The running fake IdP.
pub struct TestIdp {
    pub issuer: String,
    state: Arc<State>,
}

impl TestIdp {
    /// Starts an IdP publishing `keys`.
    pub async fn start(keys: &[&SigningKey]) -> TestIdp {
        Self::start_with(keys, json!({})).await
    }

    /// Starts an IdP publishing `keys` whose discovery document also has the members of
    /// `discovery` (where `{issuer}` in a string value stands for the issuer).
    pub async fn start_with(keys: &[&SigningKey], more: Value) -> TestIdp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(State {
            issuer: issuer.clone(),
            published: Mutex::new(JwkSet { keys: vec![] }),
            fetches: AtomicUsize::new(0),
            discovery: more,
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        let idp = TestIdp { issuer, state };
        idp.publish(keys);
        idp
    }

    /// Replaces the published key set (a key rotation).
    pub fn publish(&self, keys: &[&SigningKey]) {
        let keys = keys
            .iter()
            .map(|k| {
                let mut jwk = Jwk::from_encoding_key(&k.key, k.alg).unwrap();
                jwk.common.key_id = Some(k.kid.clone());
                jwk
            })
            .collect();
        *self.state.published.lock().unwrap() = JwkSet { keys };
    }

    /// How many times the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

async fn discovery(state: web::Data<State>) -> HttpResponse {
    let mut document = json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks", state.issuer),
    });
    for (name, value) in state.discovery.as_object().into_iter().flatten() {
        document[name] = match value {
            Value::String(s) => Value::String(s.replace("{issuer}", &state.issuer)),
            other => other.clone(),
        };
    }
    HttpResponse::Ok().json(document)
}

async fn jwks(state: web::Data<State>) -> HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let set = state.published.lock().unwrap().clone();
    HttpResponse::Ok().json(set)
}

/// Signs `claims` with `key`, with the JOSE header `typ` given (or none).
pub fn sign(key: &SigningKey, typ: Option<&str>, claims: &Value) -> String {
    sign_with(key, typ, claims, |_| {})
}

/// Signs `claims` with `key` after `adjust` has changed the JOSE header.
pub fn sign_with(
    key: &SigningKey,
    typ: Option<&str>,
    claims: &Value,
    adjust: impl FnOnce(&mut Header),
) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = typ.map(str::to_owned);
    adjust(&mut header);
    jsonwebtoken::encode(&header, claims, &key.key).unwrap()
}

/// The claims of a valid Universal Logout JWT from `issuer` for the app at `app_base`, whose
/// client there is `client_id`: five minutes to live and a fresh `jti`.
pub fn ual_claims(issuer: &str, client_id: &str, app_base: &str) -> Value {
    json!({
        "iss": issuer,
        "sub": client_id,
        "aud": format!("{app_base}{}", crate::helpers::UNIVERSAL_LOGOUT),
        "iat": now(),
        "exp": now() + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// `claims` as `change` leaves them, with a fresh `jti` so that no variant is refused as a replay.
pub fn variant(claims: &Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut claims = claims.clone();
    claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
    change(&mut claims);
    claims
}

/// A forgery: `claims` signed HS256 with the RSA test key's public PEM as the secret, the
/// algorithm confusion a verifier must refuse.
pub fn forge_hs256_with_public_key(kid: &str, typ: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    header.typ = typ.map(str::to_owned);
    let secret = EncodingKey::from_secret(&rsa_public_pem());
    jsonwebtoken::encode(&header, claims, &secret).unwrap()
}

/// Base64url without padding, the encoding of a JWT's parts, for tokens made by hand.
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A plain TCP server on loopback that counts the connections it accepts and answers each with
/// the same raw HTTP response: a stand-in for a failing IdP, or a service the app must not reach.
pub struct CountingServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
}

impl CountingServer {
    pub fn start(answer: &'static str) -> CountingServer {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        CountingServer { port, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An HTTP 404 that closes the connection.
pub const NOT_FOUND: &str =
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
