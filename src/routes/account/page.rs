//! The sessions page itself: the list, ending one session, revoking a token.

use actix_session::SessionExt as _;
use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;
use askama_web::WebTemplate;
use tracing_actix_web::RequestId;

use super::ending::PATH;
use crate::{
    auth::CurrentUser,
    db::{
        Pool,
        ids::SessionId,
        models::{
            AccessToken, Org, RevocationSource, SessionRecord,
            session::{MAX_LISTED, OwnSession},
        },
    },
    error::AppError,
    flash::{self, Flash},
    metrics::Metrics,
    page::{self, Frame},
    revocation::{self, Requester, Sessions},
    session_store::{META_KEY, SessionMeta},
    user_agent,
};

/// A session as the page shows it.
pub struct SessionView {
    pub id: SessionId,
    pub device: String,
    pub ip: String,
    pub method: String,
    pub signed_in: String,
    pub last_seen: String,
    pub current: bool,
    pub new_device: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "account/sessions.html")]
pub struct SessionsPage {
    pub frame: Frame,
    pub sessions: Vec<SessionView>,
    /// More sessions exist than are listed.
    pub more: bool,
    pub tokens: Vec<AccessToken>,
    /// The IdP that confirms "end every other session" for this session (it signed in
    /// through it); `None`: the password does.
    pub confirm_at: Option<String>,
    /// Why "end every other session" was refused.
    pub error: Option<String>,
}

/// The host of an IdP's issuer, as people know it ("login.example.com").
fn idp_name(org: Option<&Org>) -> Option<String> {
    let issuer = org?.idp_issuer.as_deref()?;
    let url = url::Url::parse(issuer).ok()?;
    url.host_str().map(str::to_owned)
}

/// Whether this request's session signed in through the org's IdP.
pub(super) fn federated(req: &HttpRequest) -> bool {
    req.get_session()
        .get::<SessionMeta>(META_KEY)
        .ok()
        .flatten()
        .is_some_and(|meta| meta.idp.is_some())
}

fn view(session: OwnSession, current: SessionId, idp: Option<&str>) -> SessionView {
    let method = match (session.method.as_deref(), idp) {
        (Some("sso"), Some(idp)) => format!("Single sign-on ({idp})"),
        (Some("sso"), None) => "Single sign-on".to_owned(),
        (Some("password"), _) => "Password".to_owned(),
        _ => "Unknown".to_owned(),
    };
    SessionView {
        id: session.public_id,
        device: user_agent::describe(session.user_agent.as_deref()),
        ip: session.ip.unwrap_or_else(|| "unknown".to_owned()),
        method,
        signed_in: page::format_time(&session.created_at),
        last_seen: page::format_time(&session.last_seen_at),
        current: session.public_id == current,
        new_device: session.new_device,
    }
}

/// The page for `user`, with `status` and, when "end every other session" was refused, why.
pub(super) async fn render(
    req: &HttpRequest,
    user: &CurrentUser,
    pool: &Pool,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, user.org_id).await?;
    let idp = idp_name(org.as_ref());
    let rows = SessionRecord::live_of_user(&mut conn, user.org_id, user.id).await?;
    let mut tokens = AccessToken::list_for_user(&mut conn, user.id).await?;
    drop(conn);
    tokens.retain(|t| t.revoked_at.is_none());
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= MAX_LISTED;
    let mut sessions: Vec<SessionView> = rows
        .into_iter()
        .map(|s| view(s, user.session_id, idp.as_deref()))
        .collect();
    // This device first, then the most recently active.
    sessions.sort_by_key(|s| !s.current);
    let confirm_at = if federated(req) { idp } else { None };
    let leaves_for_idp = confirm_at.is_some();
    let page = SessionsPage {
        frame: if error.is_some() {
            Frame::without_flash(Some(user.viewer()))
        } else {
            user.frame(req)
        },
        sessions,
        more,
        tokens,
        confirm_at,
        error,
    };
    let mut response = page::render(&page, status);
    if leaves_for_idp {
        // "Sign out all other sessions" leads, by redirect, to the IdP, which `form-action
        // 'self'` would block (as on the sign-in page).
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(page::CSP_WITHOUT_FORM_ACTION),
        );
    }
    Ok(response)
}

/// `GET /account/sessions`.
pub(super) async fn sessions(
    req: HttpRequest,
    user: CurrentUser,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    render(&req, &user, &pool, StatusCode::OK, None).await
}

/// `POST /account/sessions/{id}/end`: ends one other session of the user's. This one's id is
/// refused (400; "Sign out" ends it), and anyone else's is not found (404): the revocation
/// itself only matches sessions of this user.
#[tracing::instrument(skip_all, fields(org = %user.org_id, user = %user.id))]
pub(super) async fn end(
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = || AppError::NotFound("There is no such session among yours.".into());
    let id: uuid::Uuid = path.parse().map_err(|_| not_found())?;
    let id = SessionId(id);
    if id == user.session_id {
        return Err(AppError::BadRequest(
            "This is the session you are using. To end it, sign out.".into(),
        ));
    }
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::SelfService, "user", &request_id);
    let which = Sessions::OneOfMine {
        user: user.id,
        session: id,
        from: user.session_id,
    };
    let mut conn = pool.get().await?;
    let revoke = revocation::revoke_sessions(&mut conn, user.org_id, which, by);
    let outcomes = metrics.timed(by.source, revoke).await?;
    if outcomes.is_empty() {
        return Err(not_found());
    }
    tracing::info!(session = %id, "a user ended one of their sessions");
    Ok(flash::redirect(
        &req,
        PATH,
        Flash::info("That session is signed out."),
    ))
}

/// `POST /account/tokens/{id}/revoke`: as on the tokens page, back to this one.
#[tracing::instrument(skip_all, fields(org = %user.org_id, user = %user.id))]
pub(super) async fn revoke_token(
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = || AppError::NotFound("There is no such live token among yours.".into());
    let id: uuid::Uuid = path.parse().map_err(|_| not_found())?;
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::SelfService, "user", &request_id);
    let mut conn = pool.get().await?;
    if !revocation::revoke_access_token(&mut conn, user.org_id, user.id, id, by).await? {
        return Err(not_found());
    }
    Ok(flash::redirect(&req, PATH, Flash::info("Token revoked.")))
}
