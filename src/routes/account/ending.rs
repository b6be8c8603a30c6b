//! Ending every other session of a user, once they proved it is them: after the password
//! (`end_others`), or in the IdP's callback after a fresh sign-in there ([`finish_with_idp`]).
//! A leaf of the account routes, so the SSO callback can call it.

use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use diesel_async::AsyncPgConnection;
use tracing_actix_web::RequestId;

use crate::{
    auth::{CurrentUser, awaits_reauth},
    db::{
        ids::SessionId,
        models::{OidcLogin, RevocationSource, User},
    },
    error::AppError,
    flash::{self, Flash},
    metrics::Metrics,
    revocation::{self, Requester, Sessions},
};

/// The sessions page.
pub const PATH: &str = "/account/sessions";

/// Ends every session of `user` but the current one, through the one revocation path; the
/// message that says how many.
pub(super) async fn end_all_but(
    conn: &mut AsyncPgConnection,
    req: &HttpRequest,
    user: &CurrentUser,
    request_id: &str,
) -> Result<Flash, AppError> {
    let by = Requester::new(RevocationSource::SelfService, "user", request_id);
    let which = Sessions::AllOfMineBut {
        user: user.id,
        keep: user.session_id,
    };
    let revoke = revocation::revoke_sessions(conn, user.org_id, which, by);
    let outcomes = match req.app_data::<web::Data<Metrics>>() {
        Some(metrics) => metrics.timed(by.source, revoke).await?,
        None => revoke.await?,
    };
    let n: usize = outcomes.iter().map(|o| o.sessions_ended).sum();
    tracing::info!(sessions = n, "a user ended every other session of theirs");
    Ok(Flash::info(match n {
        0 => "You had no other sessions.".to_owned(),
        1 => "Your other session is signed out.".to_owned(),
        n => format!("Your {n} other sessions are signed out."),
    }))
}

/// The IdP's callback for a sign-in started by "end every other session": `user` (whom the IdP
/// just confirmed, freshly) must be the signed-in user of the very session that asked, which
/// is then the only one left. Anything else ends nothing.
pub async fn finish_with_idp(
    req: &HttpRequest,
    conn: &mut AsyncPgConnection,
    login: &OidcLogin,
    asking: SessionId,
    user: &User,
) -> Result<HttpResponse, AppError> {
    let current = CurrentUser::awaiting_reauth(req).filter(|_| !awaits_reauth(req));
    let Some(current) = current.filter(|c| c.session_id == asking) else {
        return Ok(flash::redirect(
            req,
            PATH,
            Flash::error("This request to sign out your other sessions has expired."),
        ));
    };
    if current.id != user.id {
        return Ok(flash::redirect(
            req,
            PATH,
            Flash::error(
                "You confirmed as someone else, so no session was signed out. Confirm as yourself.",
            ),
        ));
    }
    // Only a sign-in asked to be fresh (max_age=0, whose auth_time the IdP's answer passed).
    if login.max_age != Some(0) {
        return Err(AppError::BadRequest(
            "That sign-in was not a fresh one.".into(),
        ));
    }
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let ended = end_all_but(conn, req, &current, &request_id).await?;
    Ok(flash::redirect(req, PATH, ended))
}
