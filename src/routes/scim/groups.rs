//! `/Groups`: groups of the org's users. Members must be users of the same org (else 400
//! `invalidValue`, nothing written). Membership of the org's admin group (`orgs.admin_group`,
//! by display name, any case) is the admin role: each change to it sets the role of the users
//! concerned through [`crate::revocation::set_admin_from_idp`], in the same transaction.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use serde_json::Value;
use tracing_actix_web::RequestId;

use super::{
    client::ScimClient,
    membership::{Snapshot, audit_memberships, difference, sync_admins},
    reply::{self, base},
};
use crate::{
    config::PublicUrl,
    db::{
        Pool,
        ids::{GroupId, OrgId, UserId},
        models::{Group, GroupCriterion, RevocationSource, User},
    },
    error::is_unique_violation,
    priority::RevocationPool,
    revocation::Requester,
    scim::{
        error::ScimError,
        etag::IfMatch,
        filter::{self, Attr, Resource},
        group_draft::GroupDraft,
        list::{self, ListQuery, Page, Projection},
        patch::{clip, operations},
        resource,
    },
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Groups/.search")
            .route(web::post().to(search_groups))
            .default_service(web::to(reply::method_not_allowed)),
    )
    .service(
        web::resource("/Groups")
            .route(web::get().to(list_groups))
            .route(web::post().to(create_group))
            .default_service(web::to(reply::method_not_allowed)),
    )
    .service(
        web::resource("/Groups/{id}")
            .route(web::get().to(get_group))
            .route(web::put().to(replace_group))
            .route(web::patch().to(patch_group))
            .route(web::delete().to(delete_group))
            .default_service(web::to(reply::method_not_allowed)),
    );
}

fn not_found() -> ScimError {
    ScimError::not_found("no such group")
}

fn group_id(id: &str) -> Result<GroupId, ScimError> {
    id.parse().map_err(|_| not_found())
}

fn criteria(filter: Option<&str>) -> Result<Vec<GroupCriterion>, ScimError> {
    let Some(filter) = filter.filter(|f| !f.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    filter::parse(filter, Resource::Group)?
        .into_iter()
        .map(|c| {
            Ok(match c.attr {
                Attr::Id => GroupCriterion::Id(c.value.parse().ok()),
                Attr::DisplayName => GroupCriterion::DisplayName(c.value),
                Attr::ExternalId => GroupCriterion::ExternalId(c.value),
                Attr::MemberValue => GroupCriterion::Member(c.value.parse().ok()),
                Attr::UserName | Attr::Email => {
                    return Err(ScimError::invalid_filter("not a group attribute"));
                }
            })
        })
        .collect()
}

/// One page (`offset`, at most `limit`) of the org's groups matching `query`, each with the
/// attributes asked for, and how many match in all.
pub(super) async fn page(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    query: &ListQuery,
    (offset, limit): (i64, i64),
    base: &str,
) -> Result<(Vec<Value>, i64), ScimError> {
    let criteria = criteria(query.filter.as_deref())?;
    let projection = Projection::from_query(query);
    let (groups, total) = Group::search(conn, org, &criteria, offset, limit).await?;
    let members = if projection.includes("members") {
        let ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
        Some(Group::members_of(conn, &ids).await?)
    } else {
        None
    };
    let resources = groups
        .iter()
        .map(|g| projection.apply(resource::group(g, members.as_deref(), base)))
        .collect();
    Ok((resources, total))
}

/// A list of groups: `GET /Groups` or `POST /Groups/.search`.
async fn respond(
    client: &ScimClient,
    query: &ListQuery,
    pool: &Pool,
    url: &PublicUrl,
) -> Result<HttpResponse, ScimError> {
    let page_asked = Page::from_query(query)?;
    let mut conn = pool.get().await?;
    let window = (page_asked.offset(), page_asked.count);
    let (resources, total) = page(&mut conn, client.org_id(), query, window, &base(url)).await?;
    Ok(reply::document(&list::response(
        resources, total, page_asked,
    )))
}

async fn list_groups(
    client: ScimClient,
    req: HttpRequest,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    respond(&client, &reply::query(&req)?, &pool, &url).await
}

/// `POST /Groups/.search` (RFC 7644 §3.4.3): the query in a `SearchRequest` body.
async fn search_groups(
    client: ScimClient,
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    let query = crate::scim::search::query(&reply::json_body(&req, payload).await?)?;
    respond(&client, &query, &pool, &url).await
}

async fn render(
    conn: &mut AsyncPgConnection,
    group: &Group,
    base: &str,
) -> Result<Value, ScimError> {
    let members = Group::members_of(conn, &[group.id]).await?;
    Ok(resource::group(group, Some(&members), base))
}

async fn get_group(
    client: ScimClient,
    req: HttpRequest,
    id: web::Path<String>,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    let projection = Projection::from_query(&reply::query(&req)?);
    let mut conn = pool.get().await?;
    let group = Group::find_in_org(&mut conn, client.org_id(), group_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    let members = if projection.includes("members") {
        Some(Group::members_of(&mut conn, &[group.id]).await?)
    } else {
        None
    };
    let body = projection.apply(resource::group(&group, members.as_deref(), &base(&url)));
    Ok(reply::resource(StatusCode::OK, &body, Some(group.version)))
}

/// Writes `draft` as the group `id` of the client's org (`before`: the group as it was, or
/// `None` for a new group), checks its members, audits each membership change on the user,
/// and sets the admin role of those who joined or left the org's admin group.
async fn write(
    conn: &mut AsyncPgConnection,
    client: &ScimClient,
    existing: Option<&Group>,
    before: &[UserId],
    draft: &GroupDraft,
    by: Requester<'_>,
) -> Result<Group, ScimError> {
    let org = client.org_id();
    let added = difference(&draft.members, before);
    let removed = difference(before, &draft.members);
    // Members already in the group were checked when they joined.
    let found = User::existing_in_org(conn, org, &added).await?;
    if let Some(stranger) = added.iter().find(|m| !found.contains(m)) {
        return Err(ScimError::invalid_value(format!(
            "`{}` is not a user of this organisation",
            clip(&stranger.to_string())
        )));
    }
    let duplicate = |e: diesel::result::Error| {
        if is_unique_violation(&e) {
            ScimError::uniqueness("a group with this displayName already exists")
        } else {
            e.into()
        }
    };
    let external_id = draft.external_id.as_deref();
    let group = match existing {
        Some(group) => {
            Group::set_attributes(conn, group.id, &draft.display_name, external_id).await
        }
        None => Group::create(conn, org, &draft.display_name, external_id).await,
    }
    .map_err(duplicate)?;
    Group::change_members(conn, group.id, &added, &removed, &draft.details).await?;
    // Each user lists their groups by name: those who joined or left, and every member when
    // the group was renamed, have a new version.
    let renamed = existing.is_some_and(|g| g.display_name != group.display_name);
    let changed: Vec<UserId> = if renamed {
        before.iter().chain(&added).copied().collect()
    } else {
        added.iter().chain(&removed).copied().collect()
    };
    User::bump_versions(conn, org, &changed).await?;
    audit_memberships(conn, org, &group.display_name, &added, &removed, by).await?;
    let was = existing.map(|g| Snapshot {
        name: &g.display_name,
        members: before,
    });
    let now = Snapshot {
        name: &group.display_name,
        members: &draft.members,
    };
    sync_admins(conn, &client.org, was, Some(now), by).await?;
    Ok(group)
}

async fn create_group(
    client: ScimClient,
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<RevocationPool>,
    url: web::Data<PublicUrl>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let draft = GroupDraft::from_body(&reply::json_body(&req, payload).await?)?;
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Scim, &client.actor, &request_id);
    let mut conn = pool.get().await?;
    let group = conn
        .transaction::<_, ScimError, _>(async |conn| {
            write(conn, &client, None, &[], &draft, by).await
        })
        .await?;
    let body = render(&mut conn, &group, &base(&url)).await?;
    Ok(reply::resource(
        StatusCode::CREATED,
        &body,
        Some(group.version),
    ))
}

/// How a write changes the group: a PUT body, or PATCH operations.
enum Change {
    Replace(Value),
    Patch(Value),
}

async fn update(
    client: ScimClient,
    req: HttpRequest,
    id: &str,
    change: Change,
    pool: web::Data<RevocationPool>,
    url: web::Data<PublicUrl>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let id = group_id(id)?;
    let operations = match &change {
        Change::Patch(body) => Some(operations(body)?),
        Change::Replace(_) => None,
    };
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Scim, &client.actor, &request_id);
    let org = client.org_id();
    let if_match = IfMatch::of(&req);
    let mut conn = pool.get().await?;
    let group = conn
        .transaction::<_, ScimError, _>(async |conn| {
            let group = Group::lock_in_org(conn, org, id)
                .await?
                .ok_or_else(not_found)?;
            if_match.check(group.version)?;
            let before = Group::member_ids(conn, group.id).await?;
            let draft = match (&change, &operations) {
                (Change::Patch(_), Some(operations)) => {
                    let mut draft = GroupDraft::new(
                        group.display_name.clone(),
                        group.external_id.clone(),
                        before.clone(),
                    );
                    draft.apply(operations)?;
                    draft
                }
                (Change::Replace(body), _) | (Change::Patch(body), None) => {
                    GroupDraft::from_body(body)?
                }
            };
            write(conn, &client, Some(&group), &before, &draft, by).await
        })
        .await?;
    let body = render(&mut conn, &group, &base(&url)).await?;
    Ok(reply::resource(StatusCode::OK, &body, Some(group.version)))
}

async fn replace_group(
    client: ScimClient,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    pool: web::Data<RevocationPool>,
    url: web::Data<PublicUrl>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let body = reply::json_body(&req, payload).await?;
    update(
        client,
        req,
        &id,
        Change::Replace(body),
        pool,
        url,
        request_id,
    )
    .await
}

async fn patch_group(
    client: ScimClient,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    pool: web::Data<RevocationPool>,
    url: web::Data<PublicUrl>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let body = reply::json_body(&req, payload).await?;
    update(client, req, &id, Change::Patch(body), pool, url, request_id).await
}

async fn delete_group(
    client: ScimClient,
    req: HttpRequest,
    id: web::Path<String>,
    pool: web::Data<RevocationPool>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let id = group_id(&id)?;
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Scim, &client.actor, &request_id);
    let org = client.org_id();
    let if_match = IfMatch::of(&req);
    let mut conn = pool.get().await?;
    conn.transaction::<_, ScimError, _>(async |conn| {
        let group = Group::lock_in_org(conn, org, id)
            .await?
            .ok_or_else(not_found)?;
        if_match.check(group.version)?;
        let before = Group::member_ids(conn, group.id).await?;
        Group::delete(conn, group.id).await?;
        User::bump_versions(conn, org, &before).await?;
        audit_memberships(conn, org, &group.display_name, &[], &before, by).await?;
        let was = Snapshot {
            name: &group.display_name,
            members: &before,
        };
        sync_admins(conn, &client.org, Some(was), None, by).await
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
