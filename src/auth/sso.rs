//! Single sign-on (SSO): OpenID Connect sign-in (authorization code flow with PKCE, `state` and `nonce`) against an
//! org's identity provider, with openidconnect. Discovery documents (and the keys they bring) are
//! cached per issuer, failures too ([`FetchCache`]); every request goes through [`IdpHttp`].
//! The authorization endpoint must be at the issuer's origin, so starting a sign-in never sends
//! the browser to an arbitrary site.
//!
//! Naming: "SSO" names the feature (this module, `routes::auth::sso`, [`Sso`]); "OIDC" names the
//! protocol's own artefacts (the `/auth/oidc/*` URLs, the `oidc_logins` rows holding a sign-in's
//! state, nonce and PKCE verifier, a user's `oidc_issuer`/`oidc_subject`, a session's `oidc_sid`).

use std::time::Duration;

use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use super::{
    fetch_cache::FetchCache,
    idp_http::{FetchError, IdpHttp, error_chain},
};

/// How long a discovery document is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// An org's IdP as this app is registered there.
pub struct Idp {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// What the browser is sent to, and what the callback will need to check the answer.
pub struct Started {
    pub authorize_url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The verified identity an ID token carries.
#[derive(Clone, Debug)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// The IdP's session id, for back-channel logout.
    pub sid: Option<String>,
}

/// Why an SSO sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("cannot reach the identity provider: {0}")]
    Discovery(String),
    #[error("the identity provider refused the code: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
}

/// SSO for every org of an instance.
pub struct Sso {
    http: IdpHttp,
    metadata: FetchCache<CoreProviderMetadata>,
}

impl Sso {
    /// SSO fetching through `http`, each issuer's discovery document at most once per
    /// `min_refetch`.
    pub fn new(http: IdpHttp, min_refetch: Duration) -> Sso {
        Sso {
            http,
            metadata: FetchCache::new(min_refetch),
        }
    }

    /// The issuer's discovery document; with `refresh`, a newer one than `min_refetch` old if
    /// it can be had (the keys it brings may have rotated).
    async fn metadata(
        &self,
        issuer: &str,
        refresh: bool,
    ) -> Result<CoreProviderMetadata, SsoError> {
        let min_refetch = self.metadata.min_interval();
        let http = self.http.clone();
        let owned = issuer.to_owned();
        self.metadata
            .get(
                issuer,
                |metadata, age| {
                    let fresh = age < METADATA_TTL && !(refresh && age >= min_refetch);
                    fresh.then(|| metadata.clone())
                },
                move || discover(http, owned),
            )
            .await
            .map_err(|_| SsoError::Discovery("no usable discovery document (see the log)".into()))
    }

    fn client(
        idp: &Idp,
        metadata: CoreProviderMetadata,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SsoError,
    > {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| SsoError::Discovery(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(idp.client_id.clone()),
            Some(ClientSecret::new(
                idp.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: the IdP's authorization URL with a fresh `state`, `nonce` and PKCE
    /// (S256) challenge.
    pub async fn start(&self, idp: &Idp, redirect: &str) -> Result<Started, SsoError> {
        let client = Self::client(idp, self.metadata(&idp.issuer, false).await?, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Started {
            authorize_url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finishes a sign-in: exchanges the code (with the PKCE verifier) and verifies the ID token
    /// (signature, issuer, audience, expiry, nonce).
    pub async fn finish(
        &self,
        idp: &Idp,
        redirect: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Identity, SsoError> {
        let metadata = self.metadata(&idp.issuer, false).await?;
        let client = Self::client(idp, metadata, redirect)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| SsoError::Exchange(error_chain(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::IdToken("the identity provider sent no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(first) => {
                // Perhaps the IdP rotated its keys since discovery: fetch them again, once.
                let fresh = Self::client(idp, self.metadata(&idp.issuer, true).await?, redirect)?;
                let claims = id_token
                    .claims(&fresh.id_token_verifier(), &nonce)
                    .map_err(|_| SsoError::IdToken(first.to_string()))?;
                claims.clone()
            }
        };
        // `sid` is not among openidconnect's standard claims; the token is verified, so read it
        // from its payload.
        let sid =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Map<String, Value>>(
                id_token.to_string(),
            )
            .ok()
            .and_then(|c| c.get("sid").and_then(Value::as_str).map(str::to_owned));
        Ok(Identity {
            issuer: claims.issuer().as_str().trim_end_matches('/').to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            sid,
        })
    }
}

/// The issuer's discovery document (and keys), if its authorization endpoint is at the issuer's
/// origin.
async fn discover(http: IdpHttp, issuer: String) -> Result<CoreProviderMetadata, FetchError> {
    let issuer_url =
        IssuerUrl::new(issuer.clone()).map_err(|e| FetchError::new(format!("{issuer}: {e}")))?;
    let metadata = CoreProviderMetadata::discover_async(issuer_url.clone(), &http)
        .await
        .map_err(|e| FetchError::new(format!("{issuer}: {}", error_chain(&e))))?;
    let authorize = metadata.authorization_endpoint().url();
    if authorize.origin() != issuer_url.url().origin() {
        return Err(FetchError::new(format!(
            "{issuer}: the authorization endpoint {authorize} is not at the issuer's origin"
        )));
    }
    Ok(metadata)
}
