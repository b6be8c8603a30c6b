//! `POST /auth/oidc/start` and `GET /auth/oidc/callback`: sign-in through the org's identity
//! provider. The flow's `state`, `nonce` and PKCE verifier stay server-side for ten minutes and
//! are used once; the browser that started the flow holds the state in a signed cookie, so a
//! callback cannot be replayed from another browser (login CSRF).
//!
//! Starting is a POST from the sign-in page, so the CSRF guard refuses a start from another
//! site: a link or form there cannot sign a visitor into the attacker's org, replacing their
//! session. Starts are limited per client address, since each one stores a row for ten minutes.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::time::Duration,
    http::{StatusCode, header},
    web,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::login::{LoginPage, render, sign_in};
use crate::{
    auth::{
        admission,
        sso::{self, Idp, Sso},
    },
    config::PublicUrl,
    db::{
        Pool,
        ids::ManagedBy,
        models::{NewUser, OidcLogin, Org, User},
    },
    error::{AppError, is_unique_violation},
    rate_limit::{self, Limits},
    secret_box::SecretBox,
    signed_cookie::{self, CookieSigner},
};

const STATE_COOKIE: &str = "ual_todo_sso";
const COOKIE_PATH: &str = "/auth/oidc";
/// How long a started sign-in may take.
const LOGIN_TTL_MINUTES: i64 = 10;
/// Where the identity provider sends the browser back (registered there as the redirect URI).
pub const CALLBACK: &str = "/auth/oidc/callback";
const EXPIRED: &str = "This sign-in has expired or was already used. Please start again.";
/// The longest work email or org ID (the form's `maxlength`).
const MAX_TYPED_CHARS: usize = 254;

#[derive(Deserialize)]
pub struct StartForm {
    org: Option<String>,
}

fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// The org's IdP with its client secret opened, if single sign-on is set up.
fn idp_of(org: &Org, secrets: &SecretBox) -> Result<Option<Idp>, AppError> {
    let (Some(issuer), Some(client_id), Some(sealed)) =
        (&org.idp_issuer, &org.idp_client_id, &org.idp_client_secret)
    else {
        return Ok(None);
    };
    let client_secret = secrets.open(sealed, org.id.0.as_bytes())?;
    Ok(Some(Idp {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret,
    }))
}

/// `GET /auth/oidc/start?org=…` (an old link or bookmark): the sign-in page with the SSO field
/// filled in. Nothing starts until the person presses the button, so another site's link cannot
/// start a sign-in.
pub async fn start_form(req: HttpRequest, query: web::Query<StartForm>) -> HttpResponse {
    let typed = query.org.as_deref().unwrap_or_default().trim();
    let sso = if typed.chars().count() > MAX_TYPED_CHARS || typed.chars().any(char::is_control) {
        ""
    } else {
        typed
    };
    let page = LoginPage {
        sso: sso.to_owned(),
        ..LoginPage::blank()
    };
    render(&req, StatusCode::OK, page)
}

/// `POST /auth/oidc/start` with `org`: a work email (routed by its domain) or an org ID.
#[allow(clippy::too_many_arguments)] // the extractors of one handler
pub async fn start(
    req: HttpRequest,
    form: web::Form<StartForm>,
    pool: web::Data<Pool>,
    sso: web::Data<Sso>,
    secrets: web::Data<SecretBox>,
    public_url: web::Data<PublicUrl>,
    signer: web::Data<CookieSigner>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, AppError> {
    let typed = form.org.as_deref().unwrap_or_default().trim().to_owned();
    let fail =
        |status, message: &str| Ok(render(&req, status, LoginPage::sso_failed(&typed, message)));
    // Every start counts, finished or not (each stores a row until it expires), so the
    // reservation is kept, never released; reserving is atomic, so a burst cannot overshoot.
    let address = format!("ip:{}", limits.client_ip(&req));
    if let Err(wait) = limits.sso_start_per_ip.reserve(&address) {
        let minutes = wait.as_secs().div_ceil(60);
        let message = format!(
            "Too many sign-ins were started from your network. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        );
        let mut response = fail(StatusCode::TOO_MANY_REQUESTS, &message)?;
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_str(&rate_limit::seconds(wait)).expect("digits"),
        );
        return Ok(response);
    }
    if typed.is_empty()
        || typed.chars().count() > MAX_TYPED_CHARS
        || typed.chars().any(char::is_control)
    {
        return fail(
            StatusCode::BAD_REQUEST,
            "Enter your work email or your organisation's ID.",
        );
    }
    let mut conn = pool.get().await?;
    let org = match typed.rsplit_once('@') {
        Some((_, domain)) => Org::find_by_email_domain(&mut conn, domain).await?,
        None => Org::find_by_slug(&mut conn, &typed.to_lowercase()).await?,
    };
    let Some((org, idp)) =
        org.and_then(|org| idp_of(&org, &secrets).transpose().map(|idp| (org, idp)))
    else {
        return fail(
            StatusCode::NOT_FOUND,
            "No organisation signs in with single sign-on for that. Check the spelling, or sign in with your password.",
        );
    };
    let idp = idp?;
    let started = match sso.start(&idp, &public_url.join(CALLBACK)).await {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(org = %org.slug, error = %e, "cannot start an SSO sign-in");
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Your organisation's sign-in service cannot be reached right now. Try again shortly.",
            );
        }
    };
    let expires_at = OffsetDateTime::now_utc() + time::Duration::minutes(LOGIN_TTL_MINUTES);
    OidcLogin::create(
        &mut conn,
        &state_hash(&started.state),
        org.id,
        &started.nonce,
        &started.pkce_verifier,
        expires_at,
    )
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", started.authorize_url.as_str()))
        .cookie(signer.sign(
            STATE_COOKIE,
            started.state,
            COOKIE_PATH,
            Duration::minutes(LOGIN_TTL_MINUTES),
        ))
        .finish())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
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
) -> Result<HttpResponse, AppError> {
    let fail = |status, message: &str| {
        let mut response = render(&req, status, LoginPage::sso_failed("", message));
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
    let identity = match sso
        .finish(
            &idp,
            &public_url.join(CALLBACK),
            code,
            &login.nonce,
            &login.pkce_verifier,
        )
        .await
    {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(org = %org.slug, error = %e, "an SSO sign-in failed");
            return fail(
                StatusCode::UNAUTHORIZED,
                "The sign-in could not be completed. Please start again.",
            );
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
    tracing::info!("signed in with SSO");
    let mut response = sign_in(&req, &user, identity.sid)?;
    response
        .add_cookie(&signed_cookie::removal(STATE_COOKIE, COOKIE_PATH))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(response)
}

/// The org's user for a verified identity: known by issuer and subject; else the account with
/// the same (IdP-verified) email, which gets linked; else, if the org allows it, a new user.
/// `Err` carries what to tell the person.
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
