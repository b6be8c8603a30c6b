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
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    LoginHint, LogoutProviderMetadata, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, Scope, TokenResponse as _,
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
        CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
        CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
        CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    },
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    fetch_cache::FetchCache,
    idp_http::{FetchError, IdpHttp, error_chain},
};

/// How long a discovery document is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Clock skew allowed when checking `auth_time` against `max_age`.
const AUTH_TIME_LEEWAY: Duration = Duration::from_secs(30);

/// Discovery fields beyond OpenID Connect Core that the IPSIE SL1 profile relies on.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Sl1Metadata {
    /// RFC 9207: the provider puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for Sl1Metadata {}

/// A provider's discovery document, with RP-initiated logout's `end_session_endpoint`.
pub type Metadata = ProviderMetadata<
    LogoutProviderMetadata<Sl1Metadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// An org's IdP as this app is registered there, and how its sign-ins are checked.
pub struct Idp {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The longest time since the person authenticated at the IdP (`max_age`).
    pub max_age: Option<Duration>,
    /// The ID token signature algorithms accepted (names as in JOSE: `PS256`, …).
    pub algs: Vec<String>,
}

/// How a sign-in starts.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Passed on to the IdP (third-party-initiated login).
    pub login_hint: Option<String>,
    /// Make the person authenticate again (`prompt=login`, `max_age=0`).
    pub fresh: bool,
}

/// What the browser is sent to, and what the callback will need to check the answer.
pub struct Started {
    pub authorize_url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// The `max_age` asked for, in seconds.
    pub max_age: Option<u32>,
}

/// What the callback brings and the started sign-in kept, to finish it.
pub struct Finishing<'a> {
    pub code: &'a str,
    /// The authorization response's `iss` (RFC 9207).
    pub iss: Option<&'a str>,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub max_age: Option<u32>,
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
    /// When the person authenticated at the IdP.
    pub auth_time: Option<OffsetDateTime>,
    /// When the IdP's session ends (`session_expiry`): the app's session ends then too.
    pub session_expiry: Option<OffsetDateTime>,
    /// The ID token itself, for `id_token_hint` at sign-out.
    pub id_token: String,
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
    #[error("the authorization response's issuer is wrong or missing (RFC 9207): {0}")]
    Issuer(String),
    #[error("the authentication is older than max_age allows: {0}")]
    TooOld(String),
}

/// SSO for every org of an instance.
pub struct Sso {
    http: IdpHttp,
    metadata: FetchCache<Metadata>,
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
    async fn metadata(&self, issuer: &str, refresh: bool) -> Result<Metadata, SsoError> {
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

    /// The provider's `end_session_endpoint` (RP-initiated logout), if it has one.
    pub async fn end_session_endpoint(&self, issuer: &str) -> Option<url::Url> {
        let metadata = self.metadata(issuer, false).await.ok()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        Some(endpoint.url().clone())
    }

    fn client(idp: &Idp, metadata: Metadata, redirect: &str) -> Result<SsoClient, SsoError> {
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
    /// (S256) challenge, and the org's `max_age` (0 with `prompt=login` for a fresh one).
    pub async fn start(
        &self,
        idp: &Idp,
        redirect: &str,
        options: &StartOptions,
    ) -> Result<Started, SsoError> {
        let client = Self::client(idp, self.metadata(&idp.issuer, false).await?, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let max_age = if options.fresh {
            Some(0)
        } else {
            idp.max_age
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        };
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if let Some(seconds) = max_age {
            request = request.set_max_age(Duration::from_secs(seconds.into()));
        }
        if options.fresh {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        if let Some(hint) = &options.login_hint {
            request = request.set_login_hint(LoginHint::new(hint.clone()));
        }
        let (authorize_url, state, nonce) = request.url();
        Ok(Started {
            authorize_url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            max_age,
        })
    }

    /// Finishes a sign-in: checks the response's issuer (RFC 9207) before the code goes
    /// anywhere, exchanges the code (with the PKCE verifier) and verifies the ID token
    /// (signature with an allowed algorithm, issuer, a single-string audience, expiry, nonce,
    /// `auth_time` against `max_age`).
    pub async fn finish(
        &self,
        idp: &Idp,
        redirect: &str,
        answer: &Finishing<'_>,
    ) -> Result<Identity, SsoError> {
        let metadata = self.metadata(&idp.issuer, false).await?;
        let iss_required = metadata
            .additional_metadata()
            .additional_metadata
            .authorization_response_iss_parameter_supported
            == Some(true);
        check_response_issuer(&idp.issuer, answer.iss, iss_required)?;
        let client = Self::client(idp, metadata, redirect)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(answer.code.to_owned()))
            .map_err(|e| SsoError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(answer.pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| SsoError::Exchange(error_chain(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::IdToken("the identity provider sent no ID token".into()))?;
        let nonce = Nonce::new(answer.nonce.to_owned());
        let algs = allowed_algs(&idp.algs);
        let claims = match id_token.claims(&verifier(&client, &algs), &nonce) {
            Ok(claims) => claims.clone(),
            Err(first) => {
                // Perhaps the IdP rotated its keys since discovery: fetch them again, once.
                let fresh = Self::client(idp, self.metadata(&idp.issuer, true).await?, redirect)?;
                let claims = id_token
                    .claims(&verifier(&fresh, &algs), &nonce)
                    .map_err(|_| SsoError::IdToken(first.to_string()))?;
                claims.clone()
            }
        };
        // `aud`'s shape, `sid` and `session_expiry` are beyond openidconnect's standard claims;
        // the token is verified, so read them from its payload.
        let raw = id_token.to_string();
        let payload =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Map<String, Value>>(&raw)
                .map_err(|e| SsoError::IdToken(e.to_string()))?;
        if !payload.get("aud").is_some_and(Value::is_string) {
            return Err(SsoError::IdToken(
                "aud must be a single string (IPSIE)".into(),
            ));
        }
        let auth_time = claims
            .auth_time()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok());
        check_auth_time(auth_time, answer.max_age, OffsetDateTime::now_utc())?;
        let session_expiry = payload
            .get("session_expiry")
            .and_then(Value::as_i64)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        if session_expiry.is_some_and(|at| at <= OffsetDateTime::now_utc()) {
            return Err(SsoError::IdToken(
                "the IdP's session has already expired".into(),
            ));
        }
        Ok(Identity {
            issuer: claims.issuer().as_str().trim_end_matches('/').to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            sid: payload
                .get("sid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            auth_time,
            session_expiry,
            id_token: raw,
        })
    }
}

type SsoClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The ID token verifier of `client`: only `algs`, and no audience but the client itself.
fn verifier<'a>(
    client: &'a SsoClient,
    algs: &[CoreJwsSigningAlgorithm],
) -> openidconnect::IdTokenVerifier<'a, CoreJsonWebKey> {
    client
        .id_token_verifier()
        .set_allowed_algs(algs.to_vec())
        .set_other_audience_verifier_fn(|_| false)
}

/// The algorithms named in `names` that openidconnect knows.
fn allowed_algs(names: &[String]) -> Vec<CoreJwsSigningAlgorithm> {
    names
        .iter()
        .filter_map(|name| serde_json::from_value(Value::String(name.clone())).ok())
        .collect()
}

/// RFC 9207: an authorization response's `iss` must be the org's issuer; it must be there when
/// the provider says it always sends it. Checked before the code is sent anywhere, so a
/// response from another provider (a mix-up attack) never reaches this one's token endpoint.
pub fn check_response_issuer(
    issuer: &str,
    iss: Option<&str>,
    required: bool,
) -> Result<(), SsoError> {
    match iss {
        Some(iss) if iss.trim_end_matches('/') == issuer.trim_end_matches('/') => Ok(()),
        Some(_) => Err(SsoError::Issuer("another issuer answered".into())),
        None if required => Err(SsoError::Issuer(
            "the provider always sends iss; it is missing".into(),
        )),
        None => Ok(()),
    }
}

/// With `max_age` asked for, the ID token must say when the person authenticated, no longer
/// ago than allowed (with [`AUTH_TIME_LEEWAY`] for clock skew).
pub fn check_auth_time(
    auth_time: Option<OffsetDateTime>,
    max_age: Option<u32>,
    now: OffsetDateTime,
) -> Result<(), SsoError> {
    let Some(max_age) = max_age else {
        return Ok(());
    };
    let Some(auth_time) = auth_time else {
        return Err(SsoError::TooOld(
            "max_age was asked for and auth_time is missing".into(),
        ));
    };
    let allowed = time::Duration::seconds(max_age.into()) + AUTH_TIME_LEEWAY;
    if now - auth_time > allowed {
        return Err(SsoError::TooOld(format!(
            "authenticated {} ago",
            now - auth_time
        )));
    }
    Ok(())
}

/// The issuer's discovery document (and keys), if its authorization endpoint is at the issuer's
/// origin.
async fn discover(http: IdpHttp, issuer: String) -> Result<Metadata, FetchError> {
    let issuer_url =
        IssuerUrl::new(issuer.clone()).map_err(|e| FetchError::new(format!("{issuer}: {e}")))?;
    let metadata = Metadata::discover_async(issuer_url.clone(), &http)
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
