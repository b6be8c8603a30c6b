//! The signing keys of identity providers, found through OpenID discovery and cached.
//!
//! Keys are fetched on first use of an issuer and kept; a JWT naming an unknown `kid` triggers a
//! re-fetch (the IdP rotated its keys), at most once per [`JwksCache::min_refetch`] per issuer, so
//! forged `kid`s cannot make the app hammer the IdP. Requests time out and never follow redirects.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{Jwk, JwkSet, PublicKeyUse},
};
use serde::Deserialize;

/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why no key could be found.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch the keys of {issuer}: {reason}")]
    Unreachable { issuer: String, reason: String },
    #[error("{issuer} publishes no usable key with id {kid:?} for {alg:?}")]
    UnknownKey {
        issuer: String,
        kid: Option<String>,
        alg: Algorithm,
    },
}

struct Fetched {
    keys: JwkSet,
    at: Instant,
}

/// Per-issuer key sets, shared by all workers of an instance.
pub struct JwksCache {
    http: reqwest::Client,
    min_refetch: Duration,
    issuers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Fetched>>>>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl JwksCache {
    /// A cache whose fetches time out after `timeout` and whose re-fetches on an unknown key
    /// are at least `min_refetch` apart.
    pub fn new(timeout: Duration, min_refetch: Duration) -> Self {
        Self {
            http: super::idp_client(timeout),
            min_refetch,
            issuers: Mutex::default(),
        }
    }

    /// The least time between two re-fetches of one issuer's keys.
    pub fn min_refetch(&self) -> Duration {
        self.min_refetch
    }

    /// The key `issuer` signs with under `kid` (or its only key, without a `kid`) for `alg`.
    pub async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, JwksError> {
        let slot = {
            let mut issuers = self.issuers.lock().expect("the JWKS map is never poisoned");
            issuers.entry(issuer.to_owned()).or_default().clone()
        };
        // One fetch at a time per issuer; other callers wait for it and use its result.
        let mut slot = slot.lock().await;
        if let Some(fetched) = slot.as_ref()
            && let Some(key) = pick(&fetched.keys, kid, alg)
        {
            return key;
        }
        let stale = slot
            .as_ref()
            .is_none_or(|f| f.at.elapsed() >= self.min_refetch);
        if stale {
            let keys = self.fetch(issuer).await?;
            *slot = Some(Fetched {
                keys,
                at: Instant::now(),
            });
        }
        let fetched = slot.as_ref().expect("just fetched");
        pick(&fetched.keys, kid, alg).unwrap_or_else(|| {
            Err(JwksError::UnknownKey {
                issuer: issuer.to_owned(),
                kid: kid.map(str::to_owned),
                alg,
            })
        })
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, JwksError> {
        let unreachable = |reason: String| JwksError::Unreachable {
            issuer: issuer.to_owned(),
            reason,
        };
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await.map_err(unreachable)?;
        if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(unreachable(format!(
                "its discovery document names another issuer ({})",
                discovery.issuer
            )));
        }
        let keys: JwkSet = self
            .get_json(&discovery.jwks_uri)
            .await
            .map_err(unreachable)?;
        tracing::info!(
            issuer,
            keys = keys.keys.len(),
            "fetched the IdP's signing keys"
        );
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status()));
        }
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the expected JSON ({e})"))
    }
}

/// The usable key for `kid`/`alg` in a set: `None` when there is none, an error when it is
/// malformed.
fn pick(
    keys: &JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<Result<DecodingKey, JwksError>> {
    let usable = |jwk: &&Jwk| {
        !matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature)
            && jwk
                .common
                .key_algorithm
                .is_none_or(|a| a.to_string() == format!("{alg:?}"))
    };
    let jwk = match kid {
        Some(kid) => keys.find(kid).filter(usable)?,
        None => {
            let mut candidates = keys.keys.iter().filter(usable);
            let only = candidates.next()?;
            if candidates.next().is_some() {
                return None; // ambiguous without a kid
            }
            only
        }
    };
    Some(
        DecodingKey::from_jwk(jwk).map_err(|e| JwksError::UnknownKey {
            issuer: format!("(malformed key: {e})"),
            kid: kid.map(str::to_owned),
            alg,
        }),
    )
}
