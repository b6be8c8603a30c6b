//! `POST /oauth/token`: an org's SCIM client trades a signed JWT for a short-lived SCIM access
//! token (RFC 6749 §4.4 client credentials, authenticated by RFC 7523 `private_key_jwt`, as the
//! IPSIE account-lifecycle profile asks). Errors are RFC 6749 §5.2 JSON.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, http::header, web};
use diesel_async::AsyncConnection as _;
use time::OffsetDateTime;

use crate::{
    auth::{
        client_assertion::{self, ASSERTION_TYPE, AssertionError, Client},
        jwks::JwksCache,
    },
    config::PublicUrl,
    db::{
        Pool,
        models::{ScimToken, SeenJti},
    },
    error::AppError,
    rate_limit::{self, Limits},
    routes::body,
    secret_token,
};

/// The route, also the `aud` a client assertion may carry (after `PUBLIC_URL`).
pub const PATH: &str = "/oauth/token";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// Lifetime of an issued access token.
pub const TOKEN_LIFETIME: time::Duration = time::Duration::hours(1);
/// The one scope there is.
pub const SCOPE: &str = "scim";
/// Parameters read at most; a request with more is refused.
const MAX_PARAMS: usize = 16;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(web::post().to(token))
            .default_service(web::to(method_not_allowed)),
    );
}

/// A refusal, as RFC 6749 §5.2 words it.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    TooLarge(String),
    /// Deliberately vague: why is logged, not told.
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("only grant_type=client_credentials is supported")]
    UnsupportedGrantType,
    #[error("the only scope is scim")]
    InvalidScope,
    #[error("this JWT was already used (jti)")]
    Replayed,
    #[error(transparent)]
    App(AppError),
}

impl OAuthError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::TooLarge(_) => "invalid_request",
            Self::InvalidClient | Self::Replayed => "invalid_client",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::App(AppError::Unavailable(_)) => "temporarily_unavailable",
            Self::App(_) => "server_error",
        }
    }

    /// Whether it is the caller's fault (counted against its address), not an outage.
    fn is_refusal(&self) -> bool {
        !matches!(self, Self::App(_))
    }
}

impl From<AppError> for OAuthError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::BadRequest(m) => Self::InvalidRequest(m),
            AppError::PayloadTooLarge(m) => Self::TooLarge(m),
            other => Self::App(other),
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::from(e).into()
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::Replayed => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::App(e) => e.status_code(),
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::App(e) = self {
            e.log();
        }
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2 asks for a challenge with a 401; the client used no HTTP scheme.
            response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_client""#));
        }
        if let Self::App(AppError::Unavailable(_)) = self {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": self.code(),
                "error_description": self.to_string(),
            }))
    }
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": "use POST",
        }))
}

/// Handles one token request.
#[tracing::instrument(skip_all, fields(org, client_id))]
async fn token(
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<Pool>,
    jwks: web::Data<JwksCache>,
    public_url: web::Data<PublicUrl>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, OAuthError> {
    // An address over its limit is refused before any work (no lookup, no key fetch).
    let ip = limits.client_ip(&req);
    if let Some(wait) = limits.oauth_per_ip.retry_after(&ip) {
        tracing::warn!(ip, "too many refused OAuth token requests");
        return Ok(too_many(wait));
    }
    let answered = issue(&req, payload, &pool, &jwks, &public_url).await;
    if let Err(refusal) = &answered
        && refusal.is_refusal()
    {
        tracing::info!(ip, error = refusal.code(), reason = %refusal, "refused a token request");
        limits.oauth_per_ip.failed(&ip);
    }
    answered
}

async fn issue(
    req: &HttpRequest,
    payload: web::Payload,
    pool: &Pool,
    jwks: &JwksCache,
    public_url: &PublicUrl,
) -> Result<HttpResponse, OAuthError> {
    if !body::has_content_type(req, "application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "the body must be sent as application/x-www-form-urlencoded".into(),
        ));
    }
    let raw = body::read_capped(req, payload, MAX_BODY_BYTES).await?;
    let params = parse_form(&raw)?;
    let param = |name: &str| params.get(name).map(String::as_str);
    match param("grant_type") {
        None => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    if req.headers().contains_key(header::AUTHORIZATION) {
        tracing::info!("a token request used HTTP authentication; only private_key_jwt is");
        return Err(OAuthError::InvalidClient);
    }
    let assertion = match (param("client_assertion_type"), param("client_assertion")) {
        (Some(ASSERTION_TYPE), Some(assertion)) => assertion,
        _ => {
            tracing::info!("a token request without a JWT client assertion");
            return Err(OAuthError::InvalidClient);
        }
    };

    let mut conn = pool.get().await.map_err(AppError::from)?;
    let audiences = [public_url.join(PATH), public_url.join("")];
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let client = client_assertion::authenticate(&mut conn, assertion, &audiences, jwks)
        .await
        .map_err(|e| match e {
            AssertionError::Database(e) => OAuthError::from(e),
            refused => {
                tracing::info!(reason = %refused, "a client assertion was refused");
                OAuthError::InvalidClient
            }
        })?;
    let span = tracing::Span::current();
    span.record("org", client.org.slug.as_str());
    span.record("client_id", client.client_id.as_str());
    if param("client_id").is_some_and(|id| id != client.client_id) {
        tracing::info!("client_id differs from the assertion's");
        return Err(OAuthError::InvalidClient);
    }
    if param("scope").is_some_and(|scope| scope != SCOPE) {
        return Err(OAuthError::InvalidScope);
    }
    if client.org.disabled_at.is_some() {
        return Err(OAuthError::UnauthorizedClient(
            "this organisation is disabled".into(),
        ));
    }

    let secret = spend_and_issue(&mut conn, &client).await?;
    tracing::info!("issued a SCIM access token");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "access_token": secret,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.whole_seconds(),
            "scope": SCOPE,
        })))
}

/// Spends the assertion's `jti` and issues the token, in one transaction: a replay gets no
/// token, and a failed issue leaves the assertion usable for a retry.
async fn spend_and_issue(
    conn: &mut diesel_async::AsyncPgConnection,
    client: &Client,
) -> Result<String, OAuthError> {
    let expires_at = OffsetDateTime::now_utc() + TOKEN_LIFETIME;
    conn.transaction(async |conn| {
        let fresh =
            SeenJti::record(conn, &client.client_id, &client.jti, client.remember_until).await?;
        if !fresh {
            return Err(OAuthError::Replayed);
        }
        let (_, issued) =
            ScimToken::issue_for_client(conn, client.org.id, &client.client_id, expires_at).await?;
        Ok(secret_token::reveal(&issued).to_owned())
    })
    .await
}

/// The form's parameters: each at most once (RFC 6749 §3.2), an empty one as if omitted.
fn parse_form(raw: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for (count, (name, value)) in url::form_urlencoded::parse(raw).enumerate() {
        if count >= MAX_PARAMS {
            return Err(OAuthError::InvalidRequest(format!(
                "more than {MAX_PARAMS} parameters"
            )));
        }
        if value.is_empty() {
            continue;
        }
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::InvalidRequest(format!(
                "{} is repeated",
                crate::telemetry::clip(&name)
            )));
        }
    }
    Ok(params)
}

/// 429 for an address that keeps being refused.
fn too_many(wait: std::time::Duration) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, rate_limit::seconds(wait)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "too many refused requests from this address; retry later",
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_names_each_parameter_once_and_empty_ones_are_omitted() {
        let params = parse_form(b"grant_type=client_credentials&scope=&a=%20b").unwrap();
        assert_eq!(params["grant_type"], "client_credentials");
        assert!(!params.contains_key("scope"));
        assert_eq!(params["a"], " b");
        assert!(parse_form(b"scope=scim&scope=scim").is_err());
        let many: String = (0..=MAX_PARAMS).map(|i| format!("p{i}=1&")).collect();
        assert!(parse_form(many.as_bytes()).is_err());
    }
}
