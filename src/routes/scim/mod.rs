//! SCIM 2.0 at `/scim/v2` (RFC 7644): the org's IdP provisions users and groups with a SCIM
//! token (`Authorization: Bearer scim_…`). Mounted with the machine endpoints, outside the
//! session and CSRF layers; every answer, errors included, is `application/scim+json`.

mod client;
mod discovery;
mod groups;
mod membership;
mod reply;
mod search;
mod users;

use actix_web::web;

pub use client::ScimClient;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(crate::scim::resource::BASE_PATH)
            .configure(users::config)
            .configure(groups::config)
            .configure(discovery::config)
            .configure(search::config)
            .default_service(web::to(reply::not_found)),
    );
}
