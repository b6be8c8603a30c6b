//! HTTP routes, one module per area; each exposes `config` and `startup` mounts them all.

pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod backchannel_logout;
pub mod events;
pub mod global_token_revocation;
pub mod health;
pub mod todos;
pub mod tokens;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::{error::AppError, flash};

/// Mounts every route.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .configure(auth::config)
        .configure(todos::config)
        .configure(tokens::config)
        .configure(api::config)
        .configure(events::config)
        .configure(admin::config)
        .configure(global_token_revocation::config)
        .configure(backchannel_logout::config)
        .configure(health::config)
        .configure(assets::config);
}

/// `/` goes to the list; the list sends anonymous visitors on to sign in.
async fn home() -> HttpResponse {
    flash::see_other("/todos")
}

/// Answers requests for routes that do not exist.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(format!(
        "There is no page at {}.",
        crate::telemetry::clip(req.path())
    )))
}

/// A rendered page with the given status.
pub fn page(
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    page: impl actix_web::Responder,
) -> HttpResponse {
    use actix_web::Responder as _;
    page.customize()
        .with_status(status)
        .respond_to(req)
        .map_into_boxed_body()
}

/// A time as pages show it: `2026-11-25 16:57 UTC`.
pub fn format_time(at: &time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}
