//! The signing keys of identity providers, found through OpenID discovery and cached.
//!
//! Keys are fetched on first use of an issuer and kept; a JWT naming an unknown `kid` triggers a
//! re-fetch (the IdP rotated its keys), at most once per [`JwksCache::min_refetch`] per issuer,
//! and a failed fetch is remembered as long, so neither forged `kid`s nor a failing IdP can make
//! the app hammer it ([`FetchCache`]). Every request goes through [`IdpHttp`]: https to public
//! addresses only, capped bodies, no redirects.

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{Jwk, JwkSet, PublicKeyUse},
};
use serde::Deserialize;

use super::{
    fetch_cache::FetchCache,
    idp_http::{FetchError, IdpHttp},
};

/// Why no key could be found. The caller is told only this; why a fetch failed goes to the log,
/// so an unauthenticated caller learns nothing about what the app can reach.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the issuer's signing keys cannot be fetched right now")]
    Unreachable,
    #[error("{issuer} publishes no usable key with id {kid:?} for {alg:?}")]
    UnknownKey {
        issuer: String,
        kid: Option<String>,
        alg: Algorithm,
    },
}

/// Per-issuer key sets, shared by all workers of an instance.
pub struct JwksCache {
    http: IdpHttp,
    keys: FetchCache<JwkSet>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl JwksCache {
    /// A cache fetching through `http`, at most once per `min_refetch` per issuer.
    pub fn new(http: IdpHttp, min_refetch: std::time::Duration) -> Self {
        Self {
            http,
            keys: FetchCache::new(min_refetch),
        }
    }

    /// The least time between two fetches of one issuer's keys.
    pub fn min_refetch(&self) -> std::time::Duration {
        self.keys.min_interval()
    }

    /// The key `issuer` signs with under `kid` (or its only key, without a `kid`) for `alg`.
    pub async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, JwksError> {
        let http = self.http.clone();
        let owned = issuer.to_owned();
        let found = self
            .keys
            .get(
                issuer,
                |keys, _| pick(keys, kid, alg),
                move || fetch(http, owned),
            )
            .await;
        match found {
            Ok(key) => key,
            Err(miss) if miss.failed => Err(JwksError::Unreachable),
            Err(_) => Err(JwksError::UnknownKey {
                issuer: issuer.to_owned(),
                kid: kid.map(str::to_owned),
                alg,
            }),
        }
    }
}

impl JwksCache {
    /// The key for `kid`/`alg` in the key set published at `jwks_uri` (a Shared Signals
    /// transmitter names it in its configuration, not through OpenID discovery); cached and
    /// re-fetched like an issuer's keys.
    pub async fn key_at(
        &self,
        jwks_uri: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, JwksError> {
        let http = self.http.clone();
        let uri = jwks_uri.to_owned();
        let found = self
            .keys
            .get(
                &format!("jwks_uri {jwks_uri}"),
                |keys, _| pick(keys, kid, alg),
                move || async move { http.get_json::<JwkSet>(&uri).await },
            )
            .await;
        match found {
            Ok(key) => key,
            Err(miss) if miss.failed => Err(JwksError::Unreachable),
            Err(_) => Err(JwksError::UnknownKey {
                issuer: jwks_uri.to_owned(),
                kid: kid.map(str::to_owned),
                alg,
            }),
        }
    }
}

/// The issuer's key set, through its discovery document.
async fn fetch(http: IdpHttp, issuer: String) -> Result<JwkSet, FetchError> {
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Discovery = http.get_json(&discovery_url).await?;
    if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(FetchError::new(format!(
            "{discovery_url}: names another issuer ({})",
            discovery.issuer
        )));
    }
    let keys: JwkSet = http.get_json(&discovery.jwks_uri).await?;
    tracing::info!(
        issuer,
        keys = keys.keys.len(),
        "fetched the IdP's signing keys"
    );
    Ok(keys)
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
