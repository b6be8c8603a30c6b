//! `GET /auth/oidc/callback`: the IdP's answer to a sign-in this browser started.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use serde::Deserialize;

use super::{COOKIE_PATH, EXPIRED, STATE_COOKIE, idp_of, state_hash};
use crate::{
    auth::{
        CurrentUser, IDP_HINT_COOKIE, admission, awaits_reauth,
        sso::{self, Finishing, Sso},
    },
    config::PublicUrl,
    db::{
        Pool,
        ids::ManagedBy,
        models::{NewUser, OidcLogin, Org, SessionRecord, User},
    },
    error::{AppError, is_unique_violation},
    routes::{
        account::ending,
        auth::login::{Federated, LoginPage, render, sign_in},
    },
    secret_box::SecretBox,
    signed_cookie::{self, CookieSigner},
};

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    /// RFC 9207.
    iss: Option<String>,
}

/// `GET /auth/oidc/callback`: checks the state, exchanges the code, verifies the ID token, finds
/// (or links, or creates) the user and signs them in.
#[tracing::instrument(skip_all, fields(org = tracing::field::Empty, user = tracing::field::Empty))]
pub async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    pool: web::Data<Pool>,
    sso: web::Data<Sso>,
    secrets: web::Data<SecretBox>,
    public_url: web::Data<PublicUrl>,
    signer: web::Data<CookieSigner>,
) -> Result<HttpResponse, AppError> {
    let fail = |status, message: &str| {
        let mut response = render(status, LoginPage::sso_failed("", message));
        let _ = response.add_cookie(&signed_cookie::removal(STATE_COOKIE, COOKIE_PATH));
        Ok(response)
    };
    // The state must be this browser's, and unused.
    let from_cookie = CookieSigner::verified(&req, STATE_COOKIE);
    let Some(state) = query
        .state
        .as_deref()
        .filter(|s| Some(*s) == from_cookie.as_deref())
    else {
        return fail(StatusCode::BAD_REQUEST, EXPIRED);
    };
    let mut conn = pool.get().await?;
    let Some(login) = OidcLogin::take(&mut conn, &state_hash(state)).await? else {
        return fail(StatusCode::BAD_REQUEST, EXPIRED);
    };
    if let Some(error) = &query.error {
        if error == "access_denied" {
            return fail(
                StatusCode::UNAUTHORIZED,
                "The sign-in was cancelled or refused at your organisation's sign-in service.",
            );
        }
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return fail(
            StatusCode::UNAUTHORIZED,
            &format!("Your organisation's sign-in service did not sign you in ({code})."),
        );
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The sign-in service sent no authorization code. Please start again.",
        );
    };
    let org = Org::find(&mut conn, login.org_id).await?;
    let Some((org, idp)) =
        org.and_then(|org| idp_of(&org, &secrets).transpose().map(|idp| (org, idp)))
    else {
        return fail(
            StatusCode::BAD_REQUEST,
            "Single sign-on is no longer set up for your organisation.",
        );
    };
    let idp = idp?;
    drop(conn); // not held across the calls to the IdP
    let answer = Finishing {
        code,
        iss: query.iss.as_deref(),
        nonce: &login.nonce,
        pkce_verifier: &login.pkce_verifier,
        max_age: login.max_age.and_then(|s| u32::try_from(s).ok()),
    };
    let identity = match sso
        .finish(&idp, &public_url.join(super::CALLBACK), &answer)
        .await
    {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(org = %org.slug, error = %e, "an SSO sign-in failed");
            let message = match e {
                sso::SsoError::TooOld(_) => {
                    "Your organisation requires a recent sign-in, and the sign-in service did not confirm one. Please start again."
                }
                _ => "The sign-in could not be completed. Please start again.",
            };
            return fail(StatusCode::UNAUTHORIZED, message);
        }
    };
    let mut conn = pool.get().await?;
    let user = match find_or_create_user(&mut conn, &org, &identity).await? {
        Ok(user) => user,
        Err(message) => return fail(StatusCode::FORBIDDEN, &message),
    };
    if let Err(refusal) = admission::active(&user) {
        tracing::info!(user_id = %user.id, ?refusal, "refused an SSO sign-in");
        return fail(StatusCode::FORBIDDEN, refusal.message());
    }
    let span = tracing::Span::current();
    span.record("org", org.slug.as_str());
    span.record("user", tracing::field::display(user.id));
    // Started by "end every other session": the fresh sign-in confirms it; nobody signs in.
    if let Some(asking) = login.end_others_of {
        let mut response = ending::finish_with_idp(&req, &mut conn, &login, asking, &user).await?;
        response
            .add_cookie(&signed_cookie::removal(STATE_COOKIE, COOKIE_PATH))
            .map_err(|e| AppError::Unexpected(e.into()))?;
        return Ok(response);
    }
    tracing::info!("signed in with SSO");
    // A session asked to authenticate again goes on, the same session, if the same person did.
    if awaits_reauth(&req)
        && let Some(current) = CurrentUser::awaiting_reauth(&req)
    {
        if current.id != user.id {
            return fail(
                StatusCode::FORBIDDEN,
                "You signed in again as someone else. Sign out first to switch accounts.",
            );
        }
        SessionRecord::reauthenticated(&mut conn, current.session_id).await?;
        tracing::info!("signed in again through SSO; the session goes on");
        let mut response = crate::page::see_other(login.land_on.as_deref().unwrap_or("/todos"));
        response
            .add_cookie(&signed_cookie::removal(STATE_COOKIE, COOKIE_PATH))
            .map_err(|e| AppError::Unexpected(e.into()))?;
        return Ok(response);
    }
    let federated = Federated {
        sid: identity.sid,
        auth_time: identity.auth_time,
        ends_at: identity.session_expiry,
        id_token: identity.id_token,
    };
    let land_on = login.land_on.as_deref().unwrap_or("/todos");
    let mut response = sign_in(&req, &user, Some(federated), land_on)?;
    response
        .add_cookie(&signer.sign(
            IDP_HINT_COOKIE,
            idp.issuer.clone(),
            "/",
            actix_web::cookie::time::Duration::days(30),
        ))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    response
        .add_cookie(&signed_cookie::removal(STATE_COOKIE, COOKIE_PATH))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(response)
}

/// The org's user for a verified identity: known by issuer and subject; else, if the org opted
/// in, the account with the same (IdP-verified) email, which gets linked; else, if the org
/// allows it, a new user. `Err` carries what to tell the person.
async fn find_or_create_user(
    conn: &mut AsyncPgConnection,
    org: &Org,
    identity: &sso::Identity,
) -> Result<Result<User, String>, AppError> {
    if let Some(user) =
        User::find_by_oidc(conn, org.id, &identity.issuer, &identity.subject).await?
    {
        return Ok(Ok(user));
    }
    let verified_email = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified);
    if let Some(email) = verified_email
        && let Some(user) = User::find_by_email(conn, org.id, email).await?
    {
        if !org.sso_link_by_email {
            return Ok(Err(format!(
                "An account for {email} already exists at {} but is not linked to your sign-in service. Ask an administrator of your organisation.",
                org.name
            )));
        }
        if user.oidc_subject.is_some() {
            return Ok(Err(format!(
                "The account {email} is already linked to another identity. Ask an administrator of your organisation."
            )));
        }
        User::set_oidc_identity(conn, user.id, &identity.issuer, &identity.subject).await?;
        tracing::info!(user_id = %user.id, "linked an account to its SSO identity by email");
        return Ok(Ok(user));
    }
    if !org.sso_create_users {
        return Ok(Err(format!(
            "There is no account for you at {}. Ask an administrator of your organisation to add you.",
            org.name
        )));
    }
    let Some(email) = verified_email else {
        return Ok(Err(
            "Your sign-in service did not share a verified email address, so no account could be created.".into(),
        ));
    };
    let created = conn
        .transaction(async |conn| {
            let user = User::create(
                conn,
                &NewUser {
                    org_id: org.id,
                    email,
                    password_hash: None,
                    is_admin: false,
                    managed_by: ManagedBy::Sso,
                },
            )
            .await?;
            User::set_oidc_identity(conn, user.id, &identity.issuer, &identity.subject).await?;
            Ok::<_, diesel::result::Error>(user)
        })
        .await;
    match created {
        Ok(user) => {
            tracing::info!(user_id = %user.id, org_id = %org.id, "created a user at their first SSO sign-in");
            Ok(Ok(user))
        }
        Err(e) if is_unique_violation(&e) => Ok(Err(format!(
            "An account for {email} already exists at {}. Ask an administrator of your organisation.",
            org.name
        ))),
        Err(e) => Err(e.into()),
    }
}
