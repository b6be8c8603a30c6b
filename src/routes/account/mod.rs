//! `/account/sessions`: a user sees every session of theirs (device, address, how it signed in,
//! when) and their API tokens, and ends any of them (OWASP ASVS 5.0 V7.5.2). Only their own:
//! every query is narrowed to the signed-in user, so another user's id is simply not found.
//! Ending every other session at once asks for the password, or a fresh IdP sign-in
//! ([`end_others`], finished by [`ending`]).

use actix_web::web;

pub mod end_others;
pub mod ending;
mod page;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route(ending::PATH, web::get().to(page::sessions))
        .route(
            "/account/sessions/end-others",
            web::post().to(end_others::end_others),
        )
        .route("/account/sessions/{id}/end", web::post().to(page::end))
        .route(
            "/account/tokens/{id}/revoke",
            web::post().to(page::revoke_token),
        );
}
