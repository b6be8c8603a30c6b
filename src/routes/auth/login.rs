use std::time::Duration;

use actix_identity::Identity;
use actix_session::SessionExt as _;
use actix_web::{
    HttpMessage as _, HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{
    auth::{
        CurrentUser,
        admission::{self, Refusal},
        password,
    },
    db::{
        Pool,
        ids::SessionId,
        models::{Org, User},
    },
    error::AppError,
    metrics::Metrics,
    page::{self, Frame},
    rate_limit::{self, Limits, Reservation},
    session_store::{IdpSession, META_KEY, SessionMeta},
};

/// The one answer for an unknown email and a wrong password, so neither can be told apart.
const BAD_CREDENTIALS: &str = "That email and password do not match an account.";

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    pub frame: Frame,
    pub email: String,
    pub org: String,
    /// Asked for only when the email and password match accounts in several orgs.
    pub ask_org: bool,
    pub error: Option<String>,
    pub reason: Option<&'static str>,
    /// What was typed in the SSO form (work email or organisation ID).
    pub sso: String,
    pub sso_error: Option<String>,
}

impl LoginPage {
    /// The empty form.
    pub fn blank() -> LoginPage {
        LoginPage {
            frame: Frame::without_flash(None),
            email: String::new(),
            org: String::new(),
            ask_org: false,
            error: None,
            reason: None,
            sso: String::new(),
            sso_error: None,
        }
    }

    /// The form explaining why single sign-on did not work.
    pub fn sso_failed(sso: &str, message: impl Into<String>) -> LoginPage {
        LoginPage {
            sso: sso.to_owned(),
            sso_error: Some(message.into()),
            ..LoginPage::blank()
        }
    }
}

/// The sign-in page. Its policy leaves out `form-action`: the SSO form leads, by redirect, to
/// the org's identity provider, which `form-action 'self'` would block.
pub fn render(status: StatusCode, login: LoginPage) -> HttpResponse {
    let mut response = page::render(&login, status);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(page::CSP_WITHOUT_FORM_ACTION),
    );
    response
}

#[derive(Deserialize)]
pub struct LoginQuery {
    reason: Option<String>,
}

/// `GET /login`.
pub async fn login_form(
    req: HttpRequest,
    user: Option<CurrentUser>,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    if user.is_some() {
        return page::see_other("/todos");
    }
    let form = LoginPage {
        frame: Frame::new(&req, None),
        reason: query.reason.as_deref().and_then(page::sign_out_reason),
        ..LoginPage::blank()
    };
    render(StatusCode::OK, form)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: SecretString,
    #[serde(default)]
    org: Option<String>,
}

/// `POST /login`: checks the password on the hashing threads, then starts a fresh session.
///
/// Each attempt is reserved under its address and under every (org, account) the email may
/// name before any hashing, so concurrent guesses cannot exceed the limits; a success clears
/// only the account that signed in.
#[tracing::instrument(skip_all, fields(org = tracing::field::Empty, user = tracing::field::Empty))]
pub async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    pool: web::Data<Pool>,
    limits: web::Data<Limits>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, AppError> {
    let LoginForm {
        email,
        password,
        org,
    } = form.into_inner();
    let email = email.trim().to_owned();
    let org = org
        .map(|o| o.trim().to_lowercase())
        .filter(|o| !o.is_empty());
    let refuse = |status: StatusCode, message: &str, ask_org: bool| {
        let form = LoginPage {
            email: email.clone(),
            org: org.clone().unwrap_or_default(),
            ask_org,
            error: Some(message.to_owned()),
            ..LoginPage::blank()
        };
        render(status, form)
    };
    let too_many = |wait: Duration| {
        let minutes = wait.as_secs().div_ceil(60);
        let message = format!(
            "Too many failed sign-ins. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        );
        retry_after(refuse(StatusCode::TOO_MANY_REQUESTS, &message, false), wait)
    };

    if email.is_empty() || password.expose_secret().is_empty() {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "Enter your email and your password.",
            false,
        ));
    }
    if password.expose_secret().len() > password::MAX_PASSWORD_BYTES {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "That password is too long.",
            false,
        ));
    }
    // An address over its limit is refused before the database is asked.
    let ip = format!("ip:{}", limits.client_ip(&req));
    if let Some(wait) = limits.login_per_ip.retry_after(&ip) {
        return Ok(too_many(wait));
    }

    // No account has control characters in its email (nor could PostgreSQL compare a NUL).
    let mut candidates = if email.chars().any(char::is_control) {
        Vec::new()
    } else {
        let mut conn = pool.get().await?;
        User::find_all_by_email(&mut conn, &email).await?
    };
    if let Some(org) = &org {
        candidates.retain(|(_, slug)| slug == org);
    }
    let email_key = email.to_lowercase();
    let account = |user: Option<&User>| match user {
        Some(user) => format!("account:{}:{email_key}", user.org_id),
        None => format!("account:-:{email_key}"),
    };
    let accounts: Vec<String> = if candidates.is_empty() {
        vec![account(None)]
    } else {
        candidates
            .iter()
            .map(|(user, _)| account(Some(user)))
            .collect()
    };
    let keys = std::iter::once((&limits.login_per_ip, ip)).chain(
        accounts
            .into_iter()
            .map(|key| (&limits.login_per_account, key)),
    );
    let reserved = match rate_limit::reserve_all(keys) {
        Ok(reserved) => reserved,
        Err(wait) => return Ok(too_many(wait)),
    };

    let hashes = candidates
        .iter()
        .map(|(user, _)| user.password_hash.clone())
        .collect();
    let Ok(verdicts) = password::verify_each(password, hashes).await else {
        reserved.into_iter().for_each(Reservation::release);
        let busy = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Many people are signing in right now. Please try again in a few seconds.",
            false,
        );
        return Ok(retry_after(busy, password::QUEUE_WAIT));
    };
    metrics.password_checks(password::checks(candidates.len()));
    let mut matched: Vec<User> = candidates
        .into_iter()
        .zip(verdicts)
        .filter_map(|((user, _), ok)| ok.then_some(user))
        .collect();

    // A failure keeps every reservation counted; a right password counts against none.
    if !matched.is_empty() {
        let signed_in = (matched.len() == 1).then(|| account(matched.first()));
        for reservation in reserved {
            if signed_in.as_deref() == Some(reservation.key()) {
                reservation.succeeded();
            } else {
                reservation.release();
            }
        }
    }
    let user = match matched.len() {
        0 => {
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                BAD_CREDENTIALS,
                org.is_some(),
            ));
        }
        1 => matched.remove(0),
        _ => {
            return Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "This email has accounts in several organisations: enter your organisation's ID too.",
                true,
            ));
        }
    };

    let span = tracing::Span::current();
    span.record("org", tracing::field::display(user.org_id));
    span.record("user", tracing::field::display(user.id));
    let org = Org::find(&mut *pool.get().await?, user.org_id).await?;
    let admitted = org.map_or(Err(Refusal::Suspended), |org| {
        admission::password_sign_in(&user, &org)
    });
    if let Err(refusal) = admitted {
        tracing::info!(
            ?refusal,
            "refused a password sign-in with the right password"
        );
        return Ok(refuse(StatusCode::FORBIDDEN, refusal.message(), false));
    }
    tracing::info!("signed in with a password");
    sign_in(&req, &user, None, "/todos")
}

/// `response` with a `Retry-After` of `wait`.
fn retry_after(mut response: HttpResponse, wait: Duration) -> HttpResponse {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_str(&rate_limit::seconds(wait)).expect("digits"),
    );
    response
}

/// What the IdP said of an SSO sign-in, kept on the session.
pub struct Federated {
    /// The IdP's session id, for back-channel logout.
    pub sid: Option<String>,
    pub auth_time: Option<time::OffsetDateTime>,
    /// When the IdP's session ends: the app's ends then at the latest.
    pub ends_at: Option<time::OffsetDateTime>,
    pub id_token: String,
}

/// Starts a fresh session for `user` and sends the browser to `land_on`: the key is renewed (a
/// key planted before sign-in is never signed in), and what the IdP said is kept on it.
pub fn sign_in(
    req: &HttpRequest,
    user: &User,
    federated: Option<Federated>,
    land_on: &str,
) -> Result<HttpResponse, AppError> {
    let (oidc_sid, idp) = match federated {
        Some(f) => (
            f.sid,
            Some(IdpSession {
                auth_time: f.auth_time.map(|t| t.unix_timestamp()),
                ends_at: f.ends_at.map(|t| t.unix_timestamp()),
                id_token: f.id_token,
            }),
        ),
        None => (None, None),
    };
    let meta = SessionMeta {
        id: SessionId::new(),
        org_id: user.org_id,
        email: user.email.clone(),
        is_admin: user.is_admin,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
        // The address the limits see (behind a trusted proxy, the client's, not the proxy's).
        ip: req
            .app_data::<web::Data<Limits>>()
            .and_then(|limits| limits.client_addr(req))
            .map(|ip| ip.to_string()),
        oidc_sid,
        idp,
    };
    let failed =
        |e: &dyn std::fmt::Display| AppError::Unexpected(anyhow::anyhow!("cannot sign in: {e}"));
    Identity::login(&req.extensions(), user.id.to_string()).map_err(|e| failed(&e))?;
    req.get_session()
        .insert(META_KEY, meta)
        .map_err(|e| failed(&e))?;
    Ok(page::see_other(land_on))
}
