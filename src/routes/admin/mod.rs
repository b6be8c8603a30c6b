//! `/admin`: the org's administrators watch sessions and sign users out, make and remove
//! admins, read the audit log and manage Universal Logout credentials. Every route asks for [`AdminUser`], and every query is
//! scoped to the admin's own org: another org's user, session or key is "not found".
//!
//! [`AdminUser`]: crate::auth::AdminUser

mod audit;
mod dashboard;
mod keys;

use actix_web::web;

use crate::error::AppError;

/// The page a list was asked for (1 when none was): 400 unless 1 to 1,000,000.
fn page_number(requested: Option<i64>) -> Result<i64, AppError> {
    let page = requested.unwrap_or(1);
    if (1..=1_000_000).contains(&page) {
        Ok(page)
    } else {
        Err(AppError::BadRequest(
            "The page number must be 1 or more.".into(),
        ))
    }
}

/// The query string of page `page` of a list, keeping its non-empty filters.
fn page_link(filters: &[(&str, &str)], page: i64) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        pairs.append_pair(name, value);
    }
    pairs.append_pair("page", &page.to_string());
    pairs.finish()
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard::dashboard))
        .route("/admin/events", web::get().to(dashboard::events))
        .route(
            "/admin/users/{id}/logout",
            web::post().to(dashboard::log_out_user),
        )
        .route(
            "/admin/users/{id}/role",
            web::post().to(dashboard::set_role),
        )
        .route(
            "/admin/sessions/{id}/logout",
            web::post().to(dashboard::end_session),
        )
        .route("/admin/audit", web::get().to(audit::audit))
        .service(
            web::resource("/admin/keys")
                .route(web::get().to(keys::keys))
                .route(web::post().to(keys::create)),
        )
        .route("/admin/keys/{prefix}/revoke", web::post().to(keys::revoke))
        .route("/admin/idp", web::post().to(keys::set_idp));
}
