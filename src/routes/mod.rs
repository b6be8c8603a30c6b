//! HTTP routes, one module per area; each exposes `config` and `startup` mounts them all.

pub mod account;
pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod backchannel_logout;
pub mod body;
pub mod events;
pub mod global_token_revocation;
pub mod health;
pub mod oauth_token;
pub mod scim;
pub mod ssf;
pub mod todos;
pub mod tokens;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::{error::AppError, page};

/// Endpoints that machines call with their own credentials (bearer tokens, signed JWTs), and
/// static files. They carry no cookie to forge with and need no session, so `startup` mounts
/// them outside the session and CSRF layers; their errors answer in their own format.
pub fn machine(cfg: &mut web::ServiceConfig) {
    cfg.configure(global_token_revocation::config)
        .configure(oauth_token::config)
        .configure(backchannel_logout::config)
        .configure(api::config)
        .configure(scim::config)
        .configure(ssf::config)
        .configure(health::config)
        .configure(assets::config);
}

/// Pages, their forms and their live streams: behind the session and CSRF layers.
pub fn browser(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .configure(auth::config)
        .configure(todos::config)
        .configure(tokens::config)
        .configure(account::config)
        .configure(events::config)
        .configure(admin::config);
}

/// `/` goes to the list; the list sends anonymous visitors on to sign in.
async fn home() -> HttpResponse {
    page::see_other("/todos")
}

/// Answers requests for routes that do not exist.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(format!(
        "There is no page at {}.",
        crate::telemetry::clip(req.path())
    )))
}
