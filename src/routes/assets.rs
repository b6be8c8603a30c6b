//! Static files, compiled into the binary so it runs from any directory.

use actix_web::{HttpResponse, http::header, web};

const APP_CSS: &str = include_str!("../../static/css/app.css");
const FAVICON: &str = include_str!("../../static/favicon.svg");
const LIVE_JS: &str = include_str!("../../static/js/live.js");
const LIVE_WORKER_JS: &str = include_str!("../../static/js/live-worker.js");
const ADMIN_JS: &str = include_str!("../../static/js/admin.js");
const SESSIONS_JS: &str = include_str!("../../static/js/sessions.js");
const JS: &str = "text/javascript; charset=utf-8";

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/static/css/app.css",
        web::get().to(|| asset(APP_CSS, "text/css; charset=utf-8")),
    )
    .route(
        "/static/favicon.svg",
        web::get().to(|| asset(FAVICON, "image/svg+xml")),
    )
    .route("/static/js/live.js", web::get().to(|| asset(LIVE_JS, JS)))
    .route(
        "/static/js/live-worker.js",
        web::get().to(|| asset(LIVE_WORKER_JS, JS)),
    )
    .route("/static/js/admin.js", web::get().to(|| asset(ADMIN_JS, JS)))
    .route(
        "/static/js/sessions.js",
        web::get().to(|| asset(SESSIONS_JS, JS)),
    );
}

async fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}
