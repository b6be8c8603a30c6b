//! Signing in and out with a password.

mod login;
mod logout;

use actix_web::web;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login")
            .route(web::get().to(login::login_form))
            .route(web::post().to(login::login)),
    )
    .route("/logout", web::post().to(logout::logout));
}
