//! `POST /ssf/events`: Shared Signals push delivery (RFC 8935). The authorization header names
//! the stream, and so the org, before anything else is read; the SET must be signed by the
//! stream's transmitter for the stream's audience; its effect is committed before the 202.

mod error;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use tracing_actix_web::RequestId;

pub use error::PushError;

use crate::{
    auth::{self, jwks::JwksCache},
    db::models::{SsfStream, StreamStatus},
    metrics::Metrics,
    priority::RevocationPool,
    rate_limit::Limits,
    routes::body,
    secret_token::{self, Kind},
    ssf::{
        counts::EventCounts,
        effect::Context,
        receive::{self, Rejected},
        set::Code,
    },
};

/// Where transmitters push SETs.
pub const PATH: &str = "/ssf/events";
/// The media type of a pushed SET.
pub const CONTENT_TYPE: &str = "application/secevent+jwt";
/// Largest SET accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(web::post().to(receive))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(serde_json::json!({ "err": "invalid_request", "description": "use POST" }))
}

/// Receives one pushed SET.
#[tracing::instrument(skip_all, fields(org))]
#[allow(
    clippy::too_many_arguments,
    reason = "each argument is an actix extractor"
)]
async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<RevocationPool>,
    jwks: web::Data<JwksCache>,
    metrics: web::Data<Metrics>,
    limits: web::Data<Limits>,
    counts: web::Data<EventCounts>,
    request_id: RequestId,
) -> Result<HttpResponse, PushError> {
    let ip = limits.client_ip(&req);
    if let Some(wait) = limits.ssf_per_ip.retry_after(&ip) {
        tracing::warn!(ip, "too many failed Shared Signals authentications");
        return Err(PushError::TooMany(wait));
    }
    let found = async {
        let credential = auth::bearer(&req).map_err(PushError::from)?;
        let presented = secret_token::parse(Kind::SsfPush, credential)
            .ok_or_else(|| PushError::Unauthorized("unknown authorization header".into()))?;
        let mut conn = pool.get().await?;
        SsfStream::authenticate(&mut conn, &presented)
            .await?
            .ok_or_else(|| PushError::Unauthorized("unknown authorization header".into()))
    }
    .await;
    let (stream, org) = match found {
        Ok(found) => found,
        Err(refused @ PushError::Unauthorized(_)) => {
            limits.ssf_per_ip.failed(&ip);
            return Err(refused);
        }
        Err(other) => return Err(other),
    };
    tracing::Span::current().record("org", org.slug.as_str());
    if org.disabled_at.is_some() {
        return Err(PushError::Refused(
            Code::AccessDenied,
            "this organisation is disabled".into(),
        ));
    }
    if stream.status == StreamStatus::Disabled {
        return Err(PushError::Refused(
            Code::AccessDenied,
            "this stream is disabled".into(),
        ));
    }
    if !body::has_content_type(&req, CONTENT_TYPE) {
        return Err(PushError::invalid(format!(
            "the body must be a SET, sent with Content-Type: {CONTENT_TYPE}"
        )));
    }
    let body = body::read_capped(&req, payload, MAX_BODY_BYTES).await?;
    let token = std::str::from_utf8(&body)
        .map_err(|_| PushError::invalid("the body is not a compact JWS"))?
        .trim();
    // An authenticated stream's events: pages give way until they are applied.
    let _pages_held = pool.hold_pages();
    let mut conn = pool.get().await?;
    let request_id = request_id.to_string();
    let cx = Context {
        org: &org,
        stream: &stream,
        request_id: &request_id,
        metrics: &metrics,
        counts: &counts,
    };
    receive::process(&mut conn, &cx, &jwks, token)
        .await
        .map_err(|e| match e {
            Rejected::Refused(code, why) => PushError::Refused(code, why),
            replayed @ Rejected::Replayed => PushError::invalid(replayed.to_string()),
            Rejected::Retry(why) => PushError::Unavailable(why),
        })?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
