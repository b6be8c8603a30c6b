//! `GET /events`: the Server-Sent Events stream of the current session. It carries one event,
//! `logout`, when the session ends; the page then leaves for the sign-in page.

use actix_web::{HttpRequest, HttpResponse, Responder as _, web};
use actix_web_lab::sse::Sse;
use serde_json::json;

use crate::{
    auth::CurrentUser,
    db::Pool,
    drain::Draining,
    error::{ApiError, AppError},
    live::{self, Feed, Hub},
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(events))
        .route("/events/status", web::get().to(status));
}

/// Opens a stream for a signed-in session (401 otherwise, so `EventSource` stops retrying).
async fn events(
    req: HttpRequest,
    user: Option<CurrentUser>,
    hub: web::Data<Hub>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    let user = user.ok_or_else(|| AppError::Unauthorized("not signed in".into()))?;
    stream(&req, &user, Feed::User, hub.into_inner(), &pool).await
}

/// Subscribes, then checks the session still exists (and, for an org feed, that its user is
/// still an admin): a revocation or demotion that committed before the subscription is found
/// here, one after it is notified.
pub async fn stream(
    req: &HttpRequest,
    user: &CurrentUser,
    feed: Feed,
    hub: std::sync::Arc<Hub>,
    pool: &Pool,
) -> Result<HttpResponse, ApiError> {
    // A draining instance sends the browser elsewhere (the balancer retries a GET's 503 on
    // another instance), rather than opening a stream it is about to close.
    if req
        .app_data::<web::Data<Draining>>()
        .is_some_and(|d| d.is_on())
    {
        return Err(
            AppError::Unavailable(anyhow::anyhow!("this instance is shutting down")).into(),
        );
    }
    let subscription = hub.subscribe(user.session_id, user.id, user.org_id, feed);
    if !live::session_is_live(pool, user.session_id)
        .await
        .map_err(AppError::Unavailable)?
    {
        hub.end_session(user.session_id, "revoked");
    } else if feed == Feed::Admin
        && !live::is_admin(pool, user.org_id, user.id)
            .await
            .map_err(AppError::Unavailable)?
    {
        hub.lost_admin(user.id);
    }
    // Keep-alive comments come through the subscription (see `Hub::keep_streams_alive`).
    let mut response = Sse::from_infallible_stream(subscription)
        .respond_to(req)
        .map_into_boxed_body();
    // Nginx and similar proxies would otherwise buffer the stream.
    response.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-accel-buffering"),
        actix_web::http::header::HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// `GET /events/status`: 200 while the session is signed in, 401 after. The page asks when its
/// stream closed unexpectedly, to tell a logout from a network fault.
async fn status(user: Option<CurrentUser>) -> Result<HttpResponse, ApiError> {
    match user {
        Some(_) => Ok(HttpResponse::Ok().json(json!({ "signed_in": true }))),
        // The worker shows this sentence when it finds the session gone.
        None => Err(AppError::Unauthorized(
            crate::page::sign_out_reason("expired")
                .unwrap_or("not signed in")
                .into(),
        )
        .into()),
    }
}
