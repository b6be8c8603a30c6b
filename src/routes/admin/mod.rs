//! `/admin`: the org's administrators watch sessions and sign users out (one, or everyone in the
//! org), make and remove admins, suspend and reactivate users, set break-glass, read the audit
//! log and manage Universal Logout credentials. Every route asks for [`AdminUser`], and every query is
//! scoped to the admin's own org: another org's user, session or key is "not found".
//!
//! [`AdminUser`]: crate::auth::AdminUser

mod audit;
mod dashboard;
mod feed;
mod keys;
mod org_logout;
mod pager;
mod run_view;
mod scim_tokens;
mod ssf;
mod users;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard::dashboard))
        .route("/admin/events", web::get().to(dashboard::events))
        .route(
            "/admin/users/{id}/logout",
            web::post().to(dashboard::log_out_user),
        )
        .route("/admin/users/{id}/role", web::post().to(users::set_role))
        .route("/admin/users/{id}/suspend", web::post().to(users::suspend))
        .route(
            "/admin/users/{id}/reauth",
            web::post().to(users::require_reauth),
        )
        .route(
            "/admin/users/{id}/reactivate",
            web::post().to(users::reactivate),
        )
        .route(
            "/admin/users/{id}/break-glass",
            web::post().to(users::set_break_glass),
        )
        .route(
            "/admin/sessions/{id}/logout",
            web::post().to(dashboard::end_session),
        )
        .service(
            web::resource(org_logout::PATH)
                .route(web::get().to(org_logout::progress))
                .route(web::post().to(org_logout::sign_out_everyone)),
        )
        .route("/admin/audit", web::get().to(audit::audit))
        .service(
            web::resource("/admin/keys")
                .route(web::get().to(keys::keys))
                .route(web::post().to(keys::create)),
        )
        .route("/admin/keys/{prefix}/revoke", web::post().to(keys::revoke))
        .route("/admin/idp", web::post().to(keys::set_idp))
        .route("/admin/scim-tokens", web::post().to(scim_tokens::create))
        .route(
            "/admin/scim-tokens/{prefix}/revoke",
            web::post().to(scim_tokens::revoke),
        )
        .configure(ssf_routes);
}

/// The Shared Signals page and its forms.
fn ssf_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(ssf::PATH)
            .route(web::get().to(ssf::show))
            .route(web::post().to(ssf::set)),
    )
    .route("/admin/ssf/verify", web::post().to(ssf::verify))
    .route("/admin/ssf/remove", web::post().to(ssf::remove));
}
