//! `POST /global-token-revocation`: Universal Logout (draft-parecki-oauth-global-token-revocation).
//! An identity provider names a user; every session and token of that user ends before the 204.
//!
//! Checks run in Okta's order: 401 credential, 403 permission, 400 request, 413 size,
//! 404 user, 422 revocation failed, 204 done. Errors are `{"error", "error_description"}`.

mod credential;
pub mod known_keys;
pub mod subject;

use known_keys::KnownKeys;
use subject::Subject;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use tracing::Instrument as _;
use tracing_actix_web::RequestId;

use crate::{
    auth::{self, jwks::JwksCache},
    config::PublicUrl,
    db::models::RevocationSource,
    error::{ApiError, AppError},
    metrics::Metrics,
    priority::RevocationPool,
    rate_limit::{self, Limits},
    revocation::{self, Requester, RevokeError},
    routes::body,
};

pub use credential::{JWT_TYPES, MAX_JWT_LIFETIME};

/// The route, also the `aud` a Universal Logout JWT must carry (after `PUBLIC_URL`).
pub const PATH: &str = "/global-token-revocation";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(web::post().to(global_token_revocation))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(serde_json::json!({
            "error": "invalid_request",
            "error_description": "use POST",
        }))
}

/// Handles one Universal Logout request: reads what it needs from the request on this worker,
/// then authenticates and revokes on the revocation lane (see [`crate::priority`]).
#[tracing::instrument(skip_all, fields(org, user))]
#[allow(
    clippy::too_many_arguments,
    reason = "each argument is an actix extractor"
)]
async fn global_token_revocation(
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<RevocationPool>,
    jwks: web::Data<JwksCache>,
    public_url: web::Data<PublicUrl>,
    metrics: web::Data<Metrics>,
    limits: web::Data<Limits>,
    known_keys: web::Data<KnownKeys>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    // An address over its limit is refused before any credential work (no key lookup, no JWKS
    // fetch). Only refused credentials count, once refused (see `Limits::ual_per_ip`).
    let ip = limits.client_ip(&req);
    if let Some(wait) = limits.ual_per_ip.retry_after(&ip) {
        tracing::warn!(ip, "too many failed Universal Logout authentications");
        return Ok(too_many(wait));
    }
    // The body is read before the credential is checked, but judged after it: the answers
    // keep Okta's order (401 before 400 and 413).
    let call = Call {
        credential: auth::bearer(&req).map(str::to_owned),
        json: require_json(&req),
        // Parsed here, on the worker, so that the lane only waits on the database. Parsed
        // before the credential is checked, so that a user named by email is looked up with
        // the API key in one statement; its errors still come after the 401 and 403.
        subject: body::read_capped(&req, payload, MAX_BODY_BYTES)
            .await
            .and_then(|body| subject::parse(&body)),
        ip,
        audience: public_url.join(PATH),
        request_id: request_id.to_string(),
    };
    let lane = pool.clone();
    let work = revoke(
        call,
        pool.into_inner(),
        jwks.into_inner(),
        metrics.into_inner(),
        limits,
        known_keys.into_inner(),
    );
    lane.run(work.in_current_span()).await??;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// What a Universal Logout request asked, as read from it.
struct Call {
    credential: Result<String, AppError>,
    json: Result<(), AppError>,
    /// The user the body names (or why it names none: too large, not JSON, no `sub_id`).
    subject: Result<Subject, AppError>,
    ip: String,
    audience: String,
    request_id: String,
}

/// Authenticates the caller and signs the named user out everywhere.
async fn revoke(
    call: Call,
    pool: Arc<RevocationPool>,
    jwks: Arc<JwksCache>,
    metrics: Arc<Metrics>,
    limits: web::Data<Limits>,
    known_keys: Arc<KnownKeys>,
) -> Result<(), ApiError> {
    let email = match &call.subject {
        Ok(Subject::Email(email)) => Some(email.as_str()),
        _ => None,
    };
    let refused = |refusal: AppError| {
        // Only a refused credential counts; an outage does not.
        if matches!(refusal, AppError::Unauthorized(_)) {
            limits.ual_per_ip.failed(&call.ip);
        }
        ApiError::from(refusal)
    };
    let credential = call.credential.map_err(refused)?;
    // A key that worked here before holds pages back from the start (see `known_keys`).
    let early_hold = known_keys
        .recognises(&credential)
        .then(|| pool.hold_pages());
    let authenticated = async {
        let mut conn = pool.get().await?;
        let caller =
            credential::authenticate(&mut conn, &credential, &jwks, &call.audience, email).await?;
        Ok::<_, AppError>((caller, conn))
    }
    .await;
    let (mut caller, mut conn) = authenticated.map_err(|refusal| {
        if matches!(refusal, AppError::Unauthorized(_)) {
            known_keys.forget(&credential);
        }
        refused(refusal)
    })?;
    tracing::Span::current().record("org", caller.org.slug.as_str());
    if caller.org.disabled_at.is_some() {
        known_keys.forget(&credential);
        return Err(AppError::Forbidden("this organisation is disabled".into()).into());
    }
    if let Some(key) = &caller.api_key {
        known_keys.remember(key);
    }
    call.json?;
    let subject = call.subject?;

    let user = match caller.named_by_email.take() {
        Some(found) => found.ok_or_else(subject::no_such_user)?,
        None => subject::resolve(&mut conn, &caller.org, &subject).await?.id,
    };
    tracing::Span::current().record("user", tracing::field::display(user));
    let requester = Requester::new(RevocationSource::Ual, &caller.actor, &call.request_id)
        .spending(caller.single_use());
    // Authenticated and named: pages give way until the revocation is written.
    let _pages_held = early_hold.unwrap_or_else(|| pool.hold_pages());
    let revoke = revocation::revoke_user(&mut conn, caller.org.id, user, requester);
    let outcome = metrics
        .timed(RevocationSource::Ual, revoke)
        .await
        .map_err(|e| match e {
            RevokeError::Replayed => {
                AppError::Unauthorized("this JWT was already used (jti)".into())
            }
            RevokeError::Database(e) => match AppError::from(e) {
                unavailable @ AppError::Unavailable(_) => unavailable,
                other => {
                    tracing::error!(error = %other, "Universal Logout could not complete");
                    AppError::Unprocessable(
                        "the user's sessions could not be ended; nothing was changed, try again"
                            .into(),
                    )
                }
            },
        })?;
    tracing::info!(
        sessions_ended = outcome.sessions_ended,
        tokens_revoked = outcome.tokens_revoked,
        "Universal Logout"
    );
    Ok(())
}

/// 429 for an address that keeps failing to authenticate.
fn too_many(wait: std::time::Duration) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, rate_limit::seconds(wait)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "too_many_requests",
            "error_description": "too many failed authentications from this address; retry later",
        }))
}

fn require_json(req: &HttpRequest) -> Result<(), AppError> {
    if body::has_content_type(req, "application/json") {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "the body must be JSON, sent with Content-Type: application/json".into(),
        ))
    }
}
