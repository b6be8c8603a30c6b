//! `POST /account/sessions/end-others`: ends every session of the user but this one, once they
//! prove it is them in the same step: the password for a session signed in with one, or a
//! fresh sign-in at the org's IdP (`prompt=login`, `max_age=0`) for one signed in through it.
//! The IdP round trip keeps the intent server-side, with the sign-in's state, bound to the
//! session that asked; the callback ([`super::ending::finish_with_idp`]) acts only for that
//! same session.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tracing_actix_web::RequestId;

use super::{
    ending::{PATH, end_all_but},
    page::{federated, render},
};
use crate::{
    auth::{
        CurrentUser, password,
        sso::{Sso, StartOptions},
    },
    config::PublicUrl,
    db::{
        Pool,
        models::{Org, User},
    },
    error::AppError,
    flash,
    rate_limit::Limits,
    routes::auth::sso::{begin, idp_of, over_start_limit, redirect_to_idp, with_retry_after},
    secret_box::SecretBox,
    signed_cookie::CookieSigner,
};

#[derive(Deserialize)]
pub struct EndOthersForm {
    password: Option<SecretString>,
}

/// `POST /account/sessions/end-others`.
#[allow(clippy::too_many_arguments)] // the extractors of one handler
#[tracing::instrument(skip_all, fields(org = %user.org_id, user = %user.id))]
pub async fn end_others(
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<EndOthersForm>,
    pool: web::Data<Pool>,
    limits: web::Data<Limits>,
    request_id: RequestId,
    idp: (web::Data<Sso>, web::Data<SecretBox>, web::Data<PublicUrl>),
    signer: web::Data<CookieSigner>,
) -> Result<HttpResponse, AppError> {
    let refuse = async |status, message: &str| {
        render(&req, &user, &pool, status, Some(message.to_owned())).await
    };
    if federated(&req) {
        let (sso, secrets, public_url) = idp;
        if let Some((message, wait)) = over_start_limit(&req, &limits) {
            let page = refuse(StatusCode::TOO_MANY_REQUESTS, &message).await?;
            return Ok(with_retry_after(page, wait));
        }
        let mut conn = pool.get().await?;
        let org = Org::find(&mut conn, user.org_id).await?;
        let Some(org) = org else {
            return Err(AppError::NotFound("Your organisation is gone.".into()));
        };
        let Some(idp) = idp_of(&org, &secrets)? else {
            return refuse(
                StatusCode::CONFLICT,
                "Single sign-on is no longer set up for your organisation: sign out and sign in again first.",
            )
            .await;
        };
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
            Some(PATH),
            Some(user.session_id),
        )
        .await?;
        return match begun {
            Ok(begun) => Ok(redirect_to_idp(begun, &signer)),
            Err(message) => refuse(StatusCode::SERVICE_UNAVAILABLE, message).await,
        };
    }
    let password = form.into_inner().password.unwrap_or_default();
    if password.expose_secret().is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Enter your password to sign out your other sessions.",
        )
        .await;
    }
    if password.expose_secret().len() > password::MAX_PASSWORD_BYTES {
        return refuse(StatusCode::BAD_REQUEST, "That password is too long.").await;
    }
    // Wrong guesses count against the account's sign-in limit, as at sign-in.
    let key = format!("account:{}:{}", user.org_id, user.email.to_lowercase());
    let Ok(reservation) = limits.login_per_account.reserve(&key) else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Try again later.",
        )
        .await;
    };
    let hash = {
        let mut conn = pool.get().await?;
        User::find_in_org(&mut conn, user.org_id, user.id)
            .await?
            .and_then(|u| u.password_hash)
    };
    let Ok(verdicts) = password::verify_each(password, vec![hash]).await else {
        reservation.release();
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Many people are signing in right now. Please try again in a few seconds.",
        )
        .await;
    };
    if verdicts.first() != Some(&true) {
        return refuse(StatusCode::UNAUTHORIZED, "That password is not right.").await;
    }
    reservation.succeeded();
    let request_id = request_id.to_string();
    let mut conn = pool.get().await?;
    let ended = end_all_but(&mut conn, &req, &user, &request_id).await?;
    Ok(flash::redirect(&req, PATH, ended))
}
