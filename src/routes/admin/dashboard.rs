//! The dashboard: the org's users, their state and live sessions, updated live; the sign-out
//! buttons. The buttons that change a user are in [`super::users`].

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use tracing_actix_web::RequestId;

use super::{feed::FeedRow, pager, run_view::RunView};
use crate::{
    auth::AdminUser,
    config::PublicUrl,
    db::{
        Pool,
        ids::{AccountState, ManagedBy, SessionId, UserId},
        models::{
            Org, OrgLogout, Revocation, RevocationSource, SessionRecord, User,
            revocation::AuditFilter, session::SessionSummary,
        },
    },
    error::{ApiError, AppError},
    flash::{self, Flash},
    live::{Feed, Hub},
    metrics::Metrics,
    page::{self, Frame, format_time},
    priority::RevocationPool,
    revocation::{self, Requester, Sessions},
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
    /// Only users in this state: `active` or `suspended`.
    state: Option<String>,
    page: Option<i64>,
}

/// A user's row.
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub is_admin: bool,
    /// `active` or `suspended` (deleted users are never listed).
    pub state: AccountState,
    /// Who changed the state last and when ("Suspended by an administrator (admin …) · time").
    pub state_changed: Option<String>,
    /// Who manages the account, in words.
    pub managed: &'static str,
    /// Managed by the org's IdP over SCIM: read-only here but for sign-outs and break-glass.
    pub read_only: bool,
    pub break_glass: bool,
    /// The admin looking at the page (who cannot suspend themselves).
    pub is_self: bool,
    pub sessions: Vec<SessionRow>,
}

impl UserRow {
    /// How the state reads on its badge.
    pub fn state_label(&self) -> &'static str {
        page::state_label(self.state)
    }
}

/// The last state change of `user`, in words (none if it never changed).
fn state_changed(user: &User) -> Option<String> {
    let (by, at) = (user.state_changed_by.as_deref()?, user.state_changed_at?);
    Some(page::state_change(user.state, by, &at))
}

fn managed(by: ManagedBy) -> &'static str {
    match by {
        ManagedBy::Scim => "Managed by your IdP (SCIM)",
        ManagedBy::Sso => "Managed here · joined through SSO",
        ManagedBy::Local => "Managed here",
    }
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
    /// The state filter: `active`, `suspended`, or empty for everyone.
    pub state: &'static str,
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
    /// The org's latest "sign out everyone", going or done.
    pub org_logout: Option<RunView>,
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
    let state = match query.state.as_deref().unwrap_or_default() {
        "" => None,
        "active" => Some(AccountState::Active),
        "suspended" => Some(AccountState::Suspended),
        _ => {
            return Err(AppError::BadRequest(
                "Show users who are active or suspended (state=active or state=suspended).".into(),
            ));
        }
    };
    let page_number = pager::page_number(query.page)?;
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, admin.org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
    let (users, user_count) = User::page_for_org(
        &mut conn,
        org.id,
        Some(search.as_str()).filter(|s| !s.is_empty()),
        state,
        (page_number - 1) * USERS_PER_PAGE,
        USERS_PER_PAGE,
    )
    .await?;
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let sessions = SessionRecord::live_for_users(&mut conn, org.id, &ids).await?;
    let session_count = SessionRecord::count_live_for_org(&mut conn, org.id).await?;
    let feed = Revocation::page_for_org(&mut conn, org.id, &AuditFilter::default(), 0, FEED_LENGTH)
        .await?;
    let org_logout = OrgLogout::latest(&mut conn, org.id).await?;
    drop(conn);

    let pages = ((user_count + USERS_PER_PAGE - 1) / USERS_PER_PAGE).max(1);
    let state = state.map_or("", AccountState::as_str);
    let link = |n: i64| pager::page_link(&[("q", &search), ("state", state)], n);
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
            state_changed: state_changed(&u),
            managed: managed(u.managed_by),
            read_only: u.managed_by == ManagedBy::Scim,
            is_self: u.id == admin.id,
            id: u.id,
            email: u.email,
            is_admin: u.is_admin,
            state: u.state,
            break_glass: u.break_glass,
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
        complete: search.is_empty() && state.is_empty() && pages == 1,
        previous: (page_number > 1).then(|| link((page_number - 1).min(pages))),
        next: (page_number < pages).then(|| link(page_number + 1)),
        search,
        state,
        page: page_number,
        pages,
        feed: feed
            .into_iter()
            .map(|(r, email)| FeedRow::new(&r, email))
            .collect(),
        org_logout: org_logout.as_ref().map(RunView::new),
    };
    Ok(page::render(&dashboard, StatusCode::OK))
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
pub(super) fn no_such_user() -> AppError {
    AppError::NotFound("There is no such user in your organisation.".into())
}

/// How the audit log names an admin.
pub(super) fn actor(admin: &AdminUser) -> String {
    format!("admin {}", admin.0.email)
}

/// `POST /admin/users/{id}/logout`: "Log out everywhere", through the one revocation path.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn log_out_user(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    revocations: web::Data<RevocationPool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = no_such_user;
    let id: UserId = path.parse().map_err(|_| not_found())?;
    // A revocation: a reserved connection, and pages give way until it is written.
    let _pages_held = revocations.hold_pages();
    let mut conn = revocations.get().await?;
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
    revocations: web::Data<RevocationPool>,
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
    let _pages_held = revocations.hold_pages();
    let mut conn = revocations.get().await?;
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
