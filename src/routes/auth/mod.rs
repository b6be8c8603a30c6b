//! Signing in (with a password or through the org's IdP) and out.

mod login;
mod logout;
mod reauth;
pub(crate) mod sso;

pub use logout::POST_LOGOUT_PATH;
pub use sso::CALLBACK;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(login::login_form))
            .route(web::post().to(login::login)),
    )
    .route("/logout", web::post().to(logout::logout))
    .service(
        web::resource("/reauth")
            .route(web::get().to(reauth::reauth_form))
            .route(web::post().to(reauth::reauth)),
    )
    .service(
        web::resource("/auth/oidc/start")
            .route(web::get().to(sso::start_form))
            .route(web::post().to(sso::start)),
    )
    .route("/auth/oidc/initiate", web::get().to(sso::initiate))
    .route(sso::CALLBACK, web::get().to(sso::callback));
}
