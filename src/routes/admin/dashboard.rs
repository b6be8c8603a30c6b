//! The dashboard: the org's users and their live sessions, updated live; sign-out buttons and
//! the admin role.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use tracing_actix_web::RequestId;

use super::{feed::FeedRow, pager};
use crate::{
    auth::AdminUser,
    config::PublicUrl,
    db::{
        Pool,
        ids::{SessionId, UserId},
        models::{
            Org, Revocation, RevocationSource, SessionRecord, User, revocation::AuditFilter,
            session::SessionSummary,
        },
    },
    error::{ApiError, AppError},
    flash::{self, Flash},
    live::{Feed, Hub},
    metrics::Metrics,
    page::{self, Frame, format_time},
    revocation::{self, Requester, RoleError, Sessions},
    routes::events,
    user_agent,
};

/// Revocations shown in the dashboard's feed.
const FEED_LENGTH: i64 = 15;
/// Users per page of the dashboard.
const USERS_PER_PAGE: i64 = 50;
/// Longest search text.
const MAX_SEARCH_CHARS: usize = 200;

#[derive(Deserialize)]
pub struct DashboardQuery {
    /// Part of an email.
    q: Option<String>,
    page: Option<i64>,
}

/// A user's row.
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub is_admin: bool,
    pub sessions: Vec<SessionRow>,
}

/// One live session of a user.
pub struct SessionRow {
    pub id: SessionId,
    pub device: String,
    pub ip: String,
    pub signed_in: String,
    pub last_seen: String,
    /// The admin's own session.
    pub is_current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
pub struct DashboardPage {
    pub frame: Frame,
    /// Which admin tab is current.
    pub section: &'static str,
    pub org: Org,
    pub users: Vec<UserRow>,
    /// Users of the org (matching the search, if any), on every page.
    pub user_count: i64,
    /// The org's live sessions, on every page.
    pub session_count: i64,
    /// The search text, as typed.
    pub search: String,
    pub page: i64,
    pub pages: i64,
    /// Query strings of the neighbouring pages, search kept.
    pub previous: Option<String>,
    pub next: Option<String>,
    /// Whether every user of the org is on this page (then a sign-in by a user missing from it
    /// means a new user, and the page reloads to show them).
    pub complete: bool,
    pub feed: Vec<FeedRow>,
    pub endpoint: String,
}

/// `GET /admin`.
pub async fn dashboard(
    req: HttpRequest,
    admin: AdminUser,
    query: web::Query<DashboardQuery>,
    pool: web::Data<Pool>,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, AppError> {
    let AdminUser(admin) = admin;
    let search = query.q.as_deref().unwrap_or_default().trim().to_owned();
    if search.chars().count() > MAX_SEARCH_CHARS || search.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "Search for a part of an email: up to {MAX_SEARCH_CHARS} characters, on one line."
        )));
    }
    let page_number = pager::page_number(query.page)?;
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, admin.org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
    let (users, user_count) = User::page_for_org(
        &mut conn,
        org.id,
        Some(search.as_str()).filter(|s| !s.is_empty()),
        (page_number - 1) * USERS_PER_PAGE,
        USERS_PER_PAGE,
    )
    .await?;
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let sessions = SessionRecord::live_for_users(&mut conn, org.id, &ids).await?;
    let session_count = SessionRecord::count_live_for_org(&mut conn, org.id).await?;
    let feed = Revocation::page_for_org(&mut conn, org.id, &AuditFilter::default(), 0, FEED_LENGTH)
        .await?;
    drop(conn);

    let pages = ((user_count + USERS_PER_PAGE - 1) / USERS_PER_PAGE).max(1);
    let link = |n: i64| pager::page_link(&[("q", &search)], n);
    let mut by_user: HashMap<UserId, Vec<SessionRow>> = HashMap::new();
    for session in sessions {
        let SessionSummary {
            public_id,
            user_id,
            user_agent,
            ip,
            created_at,
            last_seen_at,
        } = session;
        let Some(user) = user_id else { continue };
        by_user.entry(user).or_default().push(SessionRow {
            id: public_id,
            device: user_agent::describe(user_agent.as_deref()),
            ip: ip.unwrap_or_default(),
            signed_in: format_time(&created_at),
            last_seen: format_time(&last_seen_at),
            is_current: public_id == admin.session_id,
        });
    }
    let users = users
        .into_iter()
        .map(|u| UserRow {
            sessions: by_user.remove(&u.id).unwrap_or_default(),
            id: u.id,
            email: u.email,
            is_admin: u.is_admin,
        })
        .collect();
    let dashboard = DashboardPage {
        frame: admin.frame(&req),
        section: "dashboard",
        endpoint: public_url.join(crate::routes::global_token_revocation::PATH),
        org,
        users,
        user_count,
        session_count,
        complete: search.is_empty() && pages == 1,
        previous: (page_number > 1).then(|| link((page_number - 1).min(pages))),
        next: (page_number < pages).then(|| link(page_number + 1)),
        search,
        page: page_number,
        pages,
        feed: feed
            .into_iter()
            .map(|(r, email)| FeedRow::new(&r, email))
            .collect(),
    };
    Ok(page::render(&req, StatusCode::OK, dashboard))
}

/// `GET /admin/events`: the org's revocations and sign-ins, live.
pub async fn events(
    req: HttpRequest,
    admin: Result<AdminUser, AppError>,
    hub: web::Data<Hub>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    let AdminUser(admin) = admin.map_err(|e| match e {
        AppError::LoginRequired | AppError::SignInAt(_) => {
            AppError::Unauthorized("not signed in".into())
        }
        other => other,
    })?;
    events::stream(&req, &admin, Feed::Admin, hub.into_inner(), &pool).await
}

/// What an admin is told of a user id that is not of their org (or not an id at all).
fn no_such_user() -> AppError {
    AppError::NotFound("There is no such user in your organisation.".into())
}

fn actor(admin: &AdminUser) -> String {
    format!("admin {}", admin.0.email)
}

/// `POST /admin/users/{id}/logout`: "Log out everywhere", through the one revocation path.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn log_out_user(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = no_such_user;
    let id: UserId = path.parse().map_err(|_| not_found())?;
    let mut conn = pool.get().await?;
    let user = User::find_in_org(&mut conn, admin.0.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    let revoke = revocation::revoke_user(&mut conn, admin.0.org_id, user.id, by);
    let outcome = metrics.timed(by.source, revoke).await?;
    let message = format!(
        "Signed {} out everywhere: {} session{} ended, {} token{} revoked.",
        user.email,
        outcome.sessions_ended,
        if outcome.sessions_ended == 1 { "" } else { "s" },
        outcome.tokens_revoked,
        if outcome.tokens_revoked == 1 { "" } else { "s" },
    );
    Ok(flash::redirect(&req, "/admin", Flash::info(message)))
}

/// `POST /admin/sessions/{id}/logout`: "End session".
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn end_session(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = || {
        AppError::NotFound(
            "There is no such session in your organisation: it may have ended already.".into(),
        )
    };
    let id: SessionId = path.parse().map_err(|_| not_found())?;
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    let mut conn = pool.get().await?;
    let revoke = revocation::revoke_sessions(&mut conn, admin.0.org_id, Sessions::One(id), by);
    let ended = metrics.timed(by.source, revoke).await?;
    if ended.is_empty() {
        return Err(not_found());
    }
    Ok(flash::redirect(
        &req,
        "/admin",
        Flash::info("Session ended."),
    ))
}

#[derive(Deserialize)]
pub struct RoleForm {
    /// `true` or `false`.
    admin: String,
}

/// `POST /admin/users/{id}/role`: "Make admin" or "Remove admin". A user who loses the role
/// loses the org's live feed at once, on every instance; the org's last admin keeps the role.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn set_role(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = no_such_user;
    let id: UserId = path.parse().map_err(|_| not_found())?;
    let make_admin = match form.admin.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(AppError::BadRequest(
                "The role must be true or false.".into(),
            ));
        }
    };
    let mut conn = pool.get().await?;
    let org = admin.0.org_id;
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    let change = match revocation::set_admin(&mut conn, org, id, make_admin, by).await {
        Ok(change) => change.ok_or_else(not_found)?,
        Err(RoleError::LastAdmin(email)) => {
            let message = format!(
                "{email} is the only administrator of your organisation: make someone else an administrator first."
            );
            return Ok(flash::redirect(&req, "/admin", Flash::error(message)));
        }
        Err(RoleError::Database(e)) => return Err(e.into()),
    };
    let email = &change.user.email;
    let (message, to) = match (make_admin, change.user.id == admin.0.id) {
        (true, _) => (format!("{email} is now an administrator."), "/admin"),
        (false, false) => (format!("{email} is no longer an administrator."), "/admin"),
        (false, true) => ("You are no longer an administrator.".to_owned(), "/todos"),
    };
    Ok(flash::redirect(&req, to, Flash::info(message)))
}
