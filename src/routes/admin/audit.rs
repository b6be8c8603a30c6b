//! `GET /admin/audit`: every sign-out and account change of the org, newest first, with what
//! changed; filterable by user and source, paginated.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::{feed::FeedRow, pager};
use crate::{
    auth::AdminUser,
    db::{
        Pool,
        models::{Revocation, RevocationSource, User, revocation::AuditFilter},
    },
    error::AppError,
    page::{self, Frame},
};

/// Rows per page.
const PER_PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct AuditQuery {
    user: Option<String>,
    source: Option<String>,
    page: Option<i64>,
}

/// A choice in a filter's drop-down.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub frame: Frame,
    /// Which admin tab is current.
    pub section: &'static str,
    pub rows: Vec<FeedRow>,
    pub users: Vec<Choice>,
    pub sources: Vec<Choice>,
    pub page: i64,
    /// Query strings of the neighbouring pages, filters kept.
    pub previous: Option<String>,
    pub next: Option<String>,
}

pub async fn audit(
    req: HttpRequest,
    admin: AdminUser,
    query: web::Query<AuditQuery>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let AdminUser(admin) = admin;
    let blank = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let (user_param, source_param) = (blank(&query.user), blank(&query.source));
    let user = user_param
        .as_deref()
        .map(|u| {
            u.parse()
                .map_err(|_| AppError::BadRequest(format!("`{u}` is not a user id.")))
        })
        .transpose()?;
    let source = source_param
        .as_deref()
        .map(|s| {
            RevocationSource::parse(s).ok_or_else(|| {
                let known: Vec<&str> = RevocationSource::ALL.iter().map(|s| s.as_str()).collect();
                AppError::BadRequest(format!("`{s}` is not a source ({}).", known.join(", ")))
            })
        })
        .transpose()?;
    let page_number = pager::page_number(query.page)?;

    let mut conn = pool.get().await?;
    let users = User::list_for_org(&mut conn, admin.org_id).await?;
    let filter = AuditFilter { user, source };
    let mut rows = Revocation::page_for_org(
        &mut conn,
        admin.org_id,
        &filter,
        (page_number - 1) * PER_PAGE,
        PER_PAGE + 1,
    )
    .await?;
    let has_next = rows.len() > usize::try_from(PER_PAGE).unwrap_or(50);
    rows.truncate(usize::try_from(PER_PAGE).unwrap_or(50));

    let filters = [
        ("user", user_param.as_deref().unwrap_or_default()),
        ("source", source_param.as_deref().unwrap_or_default()),
    ];
    let link = |n: i64| pager::page_link(&filters, n);
    let audit_page = AuditPage {
        frame: admin.frame(&req),
        section: "audit",
        rows: rows
            .into_iter()
            .map(|(r, email)| FeedRow::new(&r, email))
            .collect(),
        users: users
            .into_iter()
            .map(|u| Choice {
                selected: Some(u.id) == user,
                value: u.id.to_string(),
                label: u.email,
            })
            .collect(),
        sources: RevocationSource::ALL
            .into_iter()
            .map(|s| Choice {
                selected: Some(s) == source,
                value: s.as_str().to_owned(),
                label: s.label().to_owned(),
            })
            .collect(),
        page: page_number,
        previous: (page_number > 1).then(|| link(page_number - 1)),
        next: has_next.then(|| link(page_number + 1)),
    };
    Ok(page::render(&audit_page, StatusCode::OK))
}
