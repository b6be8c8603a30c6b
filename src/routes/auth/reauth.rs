//! `GET /reauth` and `POST /reauth`: a session asked to authenticate again (IPSIE SL2
//! "re-establish session") does so and goes on, the same session, back on the page it was on.
//! A session signed in through SSO goes through a fresh IdP sign-in (`prompt=login`,
//! `max_age=0`, finished by the callback); a password session re-enters its password here.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::sso::{
    begin, idp_of, initiate::local_path, over_start_limit, redirect_to_idp, with_retry_after,
};
use crate::{
    auth::{
        CurrentUser, awaits_reauth, password,
        sso::{Sso, StartOptions},
    },
    config::PublicUrl,
    db::{
        Pool,
        models::{Org, SessionRecord, User},
    },
    error::AppError,
    page::{self, Frame},
    rate_limit::Limits,
    secret_box::SecretBox,
    session_store::{META_KEY, SessionMeta},
    signed_cookie::CookieSigner,
};

#[derive(Template, WebTemplate)]
#[template(path = "auth/reauth.html")]
struct ReauthPage {
    frame: Frame,
    email: String,
    back: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ReauthQuery {
    #[serde(rename = "return")]
    back: Option<String>,
}

/// Where to go on: a path of this app, else the todo list.
fn back_to(back: Option<&str>, public_url: &PublicUrl) -> String {
    back.and_then(|b| local_path(b, public_url))
        .unwrap_or_else(|| "/todos".to_owned())
}

/// `GET /reauth?return=…`: the password form, or off to the IdP.
#[allow(clippy::too_many_arguments)] // the extractors of one handler
pub async fn reauth_form(
    req: HttpRequest,
    query: web::Query<ReauthQuery>,
    pool: web::Data<Pool>,
    sso: web::Data<Sso>,
    secrets: web::Data<SecretBox>,
    public_url: web::Data<PublicUrl>,
    signer: web::Data<CookieSigner>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, AppError> {
    let back = back_to(query.back.as_deref(), &public_url);
    let Some(user) = CurrentUser::awaiting_reauth(&req) else {
        return Ok(page::see_other("/login"));
    };
    if !awaits_reauth(&req) {
        return Ok(page::see_other(&back));
    }
    let federated = actix_session::SessionExt::get_session(&req)
        .get::<SessionMeta>(META_KEY)
        .ok()
        .flatten()
        .and_then(|meta| meta.idp)
        .is_some();
    if federated {
        // Each start stores a sign-in for ten minutes: the same limit as every other start.
        if let Some((message, wait)) = over_start_limit(&req, &limits) {
            let form = ReauthPage {
                frame: Frame::without_flash(None),
                email: user.email.clone(),
                back,
                error: Some(message),
            };
            let page = page::render(&form, StatusCode::TOO_MANY_REQUESTS);
            return Ok(with_retry_after(page, wait));
        }
        let mut conn = pool.get().await?;
        let org = Org::find(&mut conn, user.org_id).await?;
        if let Some(org) = org
            && let Some(idp) = idp_of(&org, &secrets)?
        {
            let fresh = StartOptions {
                login_hint: None,
                fresh: true,
            };
            let begun = begin(
                &mut conn,
                &sso,
                (&org, &idp),
                &public_url,
                &fresh,
                Some(&back),
                None,
            );
            if let Ok(begun) = begun.await? {
                return Ok(redirect_to_idp(begun, &signer));
            }
        }
        // The IdP cannot be reached (or SSO was removed): a password, if the user has one.
    }
    let form = ReauthPage {
        frame: Frame::without_flash(None),
        email: user.email.clone(),
        back,
        error: None,
    };
    Ok(page::render(&form, StatusCode::OK))
}

#[derive(Deserialize)]
pub struct ReauthForm {
    password: SecretString,
    #[serde(rename = "return")]
    back: Option<String>,
}

/// `POST /reauth`: the password again. Wrong guesses count against the account's sign-in limit.
pub async fn reauth(
    req: HttpRequest,
    form: web::Form<ReauthForm>,
    pool: web::Data<Pool>,
    limits: web::Data<Limits>,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, AppError> {
    let ReauthForm { password, back } = form.into_inner();
    let back = back_to(back.as_deref(), &public_url);
    let Some(user) = CurrentUser::awaiting_reauth(&req) else {
        return Ok(page::see_other("/login"));
    };
    let refuse = |status, message: &str| {
        let form = ReauthPage {
            frame: Frame::without_flash(None),
            email: user.email.clone(),
            back: back.clone(),
            error: Some(message.to_owned()),
        };
        Ok(page::render(&form, status))
    };
    if password.expose_secret().len() > password::MAX_PASSWORD_BYTES {
        return refuse(StatusCode::BAD_REQUEST, "That password is too long.");
    }
    let key = format!("account:{}:{}", user.org_id, user.email.to_lowercase());
    let Ok(reservation) = limits.login_per_account.reserve(&key) else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Sign out and sign in again later.",
        );
    };
    let mut conn = pool.get().await?;
    let hash = User::find_in_org(&mut conn, user.org_id, user.id)
        .await?
        .and_then(|u| u.password_hash);
    drop(conn); // not held while hashing
    let Ok(verdicts) = password::verify_each(password, vec![hash]).await else {
        reservation.release();
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Many people are signing in right now. Please try again in a few seconds.",
        );
    };
    if verdicts.first() != Some(&true) {
        return refuse(StatusCode::UNAUTHORIZED, "That password is not right.");
    }
    reservation.succeeded();
    SessionRecord::reauthenticated(&mut *pool.get().await?, user.session_id).await?;
    tracing::info!(user_id = %user.id, "signed in again with a password; the session goes on");
    Ok(page::see_other(&back))
}
