//! Sign-in through the org's identity provider: `POST /auth/oidc/start` (from the sign-in page),
//! `GET /auth/oidc/initiate` (started by the IdP, [`initiate`]) and `GET /auth/oidc/callback`
//! ([`callback`]). The flow's `state`, `nonce`, PKCE verifier and `max_age` stay server-side for
//! ten minutes and are used once; the browser that started the flow holds the state in a signed
//! cookie, so a callback cannot be replayed from another browser (login CSRF).
//!
//! Starting from the sign-in page is a POST, so the CSRF guard refuses a start from another
//! site. Starts are limited per client address, since each one stores a row for ten minutes.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::time::Duration,
    http::{StatusCode, header},
    web,
};
use diesel_async::AsyncPgConnection;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::login::{LoginPage, render};
use crate::{
    auth::sso::{Idp, Sso, StartOptions},
    config::PublicUrl,
    db::{
        Pool,
        ids::SessionId,
        models::{OidcLogin, Org, oidc_login::NewOidcLogin},
    },
    error::AppError,
    rate_limit::{self, Limits},
    secret_box::SecretBox,
    signed_cookie::CookieSigner,
};

mod callback;
pub mod initiate;

pub use callback::callback;
pub use initiate::initiate;

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
pub fn idp_of(org: &Org, secrets: &SecretBox) -> Result<Option<Idp>, AppError> {
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
        max_age: org
            .sso_max_age
            .and_then(|s| u64::try_from(s).ok())
            .map(std::time::Duration::from_secs),
        algs: org.sso_algs.clone(),
    }))
}

/// `GET /auth/oidc/start?org=…` (an old link or bookmark): the sign-in page with the SSO field
/// filled in. Nothing starts until the person presses the button, so another site's link cannot
/// start a sign-in.
pub async fn start_form(query: web::Query<StartForm>) -> HttpResponse {
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
    render(StatusCode::OK, page)
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
    let fail = |status, message: &str| Ok(render(status, LoginPage::sso_failed(&typed, message)));
    // Every start counts, finished or not (each stores a row until it expires), so the
    // reservation is kept, never released; reserving is atomic, so a burst cannot overshoot.
    if let Some((message, wait)) = over_start_limit(&req, &limits) {
        return Ok(with_retry_after(
            fail(StatusCode::TOO_MANY_REQUESTS, &message)?,
            wait,
        ));
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
    let options = StartOptions::default();
    match begin(
        &mut conn,
        &sso,
        (&org, &idp),
        &public_url,
        &options,
        None,
        None,
    )
    .await?
    {
        Ok(started) => Ok(redirect_to_idp(started, &signer)),
        Err(message) => fail(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

/// A sign-in on its way to the IdP: its authorization URL, and the state its browser keeps.
pub struct Begun {
    authorize_url: url::Url,
    state: String,
}

/// Starts a sign-in of `org` at its IdP and records it; `Err` says what to tell the person when
/// the IdP cannot be reached. After the callback the browser lands on `land_on` (a path of this
/// app), else on the todo list. With `end_others_of` (a session, and `options.fresh`), the
/// callback ends every other session of that session's user instead of signing in.
pub async fn begin(
    conn: &mut AsyncPgConnection,
    sso: &Sso,
    (org, idp): (&Org, &Idp),
    public_url: &PublicUrl,
    options: &StartOptions,
    land_on: Option<&str>,
    end_others_of: Option<SessionId>,
) -> Result<Result<Begun, &'static str>, AppError> {
    let started = match sso.start(idp, &public_url.join(CALLBACK), options).await {
        Ok(started) => started,
        Err(e) => {
            tracing::warn!(org = %org.slug, error = %e, "cannot start an SSO sign-in");
            return Ok(Err(
                "Your organisation's sign-in service cannot be reached right now. Try again shortly.",
            ));
        }
    };
    let expires_at = OffsetDateTime::now_utc() + time::Duration::minutes(LOGIN_TTL_MINUTES);
    let pending = NewOidcLogin {
        state_hash: &state_hash(&started.state),
        org_id: org.id,
        nonce: &started.nonce,
        pkce_verifier: &started.pkce_verifier,
        expires_at,
        max_age: started.max_age.and_then(|s| i32::try_from(s).ok()),
        land_on,
        end_others_of,
    };
    OidcLogin::create(conn, &pending).await?;
    Ok(Ok(Begun {
        authorize_url: started.authorize_url,
        state: started.state,
    }))
}

/// Sends the browser to the IdP, holding the sign-in's state in a signed cookie.
pub fn redirect_to_idp(begun: Begun, signer: &CookieSigner) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", begun.authorize_url.as_str()))
        .cookie(signer.sign(
            STATE_COOKIE,
            begun.state,
            COOKIE_PATH,
            Duration::minutes(LOGIN_TTL_MINUTES),
        ))
        .finish()
}

/// Whether an address is the start-of-sign-in limit's to refuse: `Some` is the answer.
pub(crate) fn over_start_limit(
    req: &HttpRequest,
    limits: &Limits,
) -> Option<(String, std::time::Duration)> {
    let address = format!("ip:{}", limits.client_ip(req));
    let wait = limits.sso_start_per_ip.reserve(&address).err()?;
    let minutes = wait.as_secs().div_ceil(60);
    let message = format!(
        "Too many sign-ins were started from your network. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    Some((message, wait))
}

/// `response` with a `Retry-After` of `wait`.
pub(crate) fn with_retry_after(
    mut response: HttpResponse,
    wait: std::time::Duration,
) -> HttpResponse {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_str(&rate_limit::seconds(wait)).expect("digits"),
    );
    response
}
