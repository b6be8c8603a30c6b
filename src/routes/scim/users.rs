//! `/Users`: provisioning. Every write runs in one transaction with its audit row and bumps the
//! user's version; deactivation and deletion go through [`revocation::set_state`], which ends
//! every session and token of the user before the response is sent.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use serde_json::{Value, json};
use tracing_actix_web::RequestId;

use super::{
    client::ScimClient,
    reply::{self, base},
};
use crate::{
    config::PublicUrl,
    db::{
        Pool,
        ids::{AccountState, ManagedBy, OrgId, UserId},
        models::{Action, Group, RevocationSource, User, UserAttributes, UserCriterion},
    },
    error::is_unique_violation,
    priority::RevocationPool,
    revocation::{self, Requester},
    scim::{
        error::ScimError,
        etag::IfMatch,
        filter::{self, Attr, Resource},
        list::{self, ListQuery, Page, Projection},
        patch::operations,
        resource,
        user_draft::UserDraft,
    },
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Users/.search")
            .route(web::post().to(search_users))
            .default_service(web::to(reply::method_not_allowed)),
    )
    .service(
        web::resource("/Users")
            .route(web::get().to(list_users))
            .route(web::post().to(create_user))
            .default_service(web::to(reply::method_not_allowed)),
    )
    .service(
        web::resource("/Users/{id}")
            .route(web::get().to(get_user))
            .route(web::put().to(replace_user))
            .route(web::patch().to(patch_user))
            .route(web::delete().to(delete_user))
            .default_service(web::to(reply::method_not_allowed)),
    );
}

fn not_found() -> ScimError {
    ScimError::not_found("no such user")
}

/// The user id in the path; one that is no UUID names nobody.
fn user_id(id: &str) -> Result<UserId, ScimError> {
    id.parse().map_err(|_| not_found())
}

/// The filter as database criteria.
fn criteria(filter: Option<&str>) -> Result<Vec<UserCriterion>, ScimError> {
    let Some(filter) = filter.filter(|f| !f.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    filter::parse(filter, Resource::User)?
        .into_iter()
        .map(|c| {
            Ok(match c.attr {
                Attr::Id => UserCriterion::Id(c.value.parse().ok()),
                Attr::UserName | Attr::Email => UserCriterion::Email(c.value),
                Attr::ExternalId => UserCriterion::ExternalId(c.value),
                Attr::DisplayName => UserCriterion::DisplayName(c.value),
                Attr::MemberValue => return Err(ScimError::invalid_filter("not a user attribute")),
            })
        })
        .collect()
}

/// `user` as a resource, with its groups.
async fn render(conn: &mut AsyncPgConnection, user: &User, base: &str) -> Result<Value, ScimError> {
    let groups = Group::groups_of(conn, &[user.id]).await?;
    Ok(resource::user(user, &groups, base))
}

/// One page (`offset`, at most `limit`) of the org's users matching `query`, each with the
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
    let (users, total) = User::search(conn, org, &criteria, offset, limit).await?;
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let groups = if projection.includes("groups") {
        Group::groups_of(conn, &ids).await?
    } else {
        Vec::new()
    };
    let resources = users
        .iter()
        .map(|u| projection.apply(resource::user(u, &groups, base)))
        .collect();
    Ok((resources, total))
}

/// A list of users: `GET /Users` or `POST /Users/.search`.
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

async fn list_users(
    client: ScimClient,
    req: HttpRequest,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    respond(&client, &reply::query(&req)?, &pool, &url).await
}

/// `POST /Users/.search` (RFC 7644 §3.4.3): the query in a `SearchRequest` body.
async fn search_users(
    client: ScimClient,
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    let query = crate::scim::search::query(&reply::json_body(&req, payload).await?)?;
    respond(&client, &query, &pool, &url).await
}

async fn get_user(
    client: ScimClient,
    req: HttpRequest,
    id: web::Path<String>,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    let projection = Projection::from_query(&reply::query(&req)?);
    let mut conn = pool.get().await?;
    let user = User::find_in_org(&mut conn, client.org_id(), user_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    let body = projection.apply(render(&mut conn, &user, &base(&url)).await?);
    Ok(reply::resource(StatusCode::OK, &body, Some(user.version)))
}

/// The attributes as the audit log records them.
fn audited(attributes: &UserAttributes, active: bool) -> Value {
    json!({
        "userName": attributes.email,
        "externalId": attributes.external_id,
        "displayName": attributes.display_name,
        "givenName": attributes.given_name,
        "familyName": attributes.family_name,
        "active": active,
    })
}

fn duplicate(e: diesel::result::Error) -> ScimError {
    if is_unique_violation(&e) {
        ScimError::uniqueness("a user with this userName already exists")
    } else {
        e.into()
    }
}

/// Sets `draft` on `user` (locked, in the caller's transaction): attributes, then the state
/// through the revocation path. Returns the user afterwards.
async fn write(
    conn: &mut AsyncPgConnection,
    client: &ScimClient,
    user: User,
    draft: &UserDraft,
    by: Requester<'_>,
) -> Result<User, ScimError> {
    let before = UserAttributes::of(&user);
    let was_active = user.state == AccountState::Active;
    let id = user.id;
    // Nothing to write when nothing changed and the IdP already manages the user (a bare
    // deactivation): one round trip less before the sessions end.
    let unchanged = before == draft.attributes && user.managed_by == ManagedBy::Scim;
    let mut after = if unchanged {
        user
    } else {
        User::set_attributes(conn, id, &draft.attributes)
            .await
            .map_err(duplicate)?
    };
    if before != draft.attributes {
        let detail = json!({
            "before": audited(&before, was_active),
            "after": audited(&draft.attributes, was_active),
        });
        revocation::lifecycle::record(conn, client.org_id(), id, Action::Update, by, detail)
            .await?;
    }
    if was_active != draft.active {
        let to = if draft.active {
            AccountState::Active
        } else {
            AccountState::Suspended
        };
        // The user's row is locked by this transaction already (see `update`).
        let org = client.org_id();
        after = revocation::lifecycle::set_locked_state(conn, org, after, to, by)
            .await?
            .user;
    }
    Ok(after)
}

async fn create_user(
    client: ScimClient,
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<RevocationPool>,
    url: web::Data<PublicUrl>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let draft = UserDraft::from_body(&reply::json_body(&req, payload).await?, None)?;
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Scim, &client.actor, &request_id);
    let mut conn = pool.get().await?;
    let org = client.org_id();
    let user = conn
        .transaction::<_, ScimError, _>(async |conn| {
            let user = User::create_provisioned(conn, org, &draft.attributes)
                .await
                .map_err(duplicate)?;
            let detail = json!({ "after": audited(&draft.attributes, true) });
            revocation::lifecycle::record(conn, org, user.id, Action::Create, by, detail).await?;
            if draft.active {
                return Ok(user);
            }
            let change = revocation::set_state(conn, org, user.id, AccountState::Suspended, by)
                .await?
                .ok_or_else(not_found)?;
            Ok(change.user)
        })
        .await?;
    tracing::info!(org_id = %org, user_id = %user.id, actor = client.actor, "SCIM created a user");
    let body = render(&mut conn, &user, &base(&url)).await?;
    Ok(reply::resource(
        StatusCode::CREATED,
        &body,
        Some(user.version),
    ))
}

/// How a write changes the user: a PUT body, or PATCH operations.
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
    let id = user_id(id)?;
    let operations = match &change {
        Change::Patch(body) => Some(operations(body)?),
        Change::Replace(_) => None,
    };
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Scim, &client.actor, &request_id);
    // An authenticated write, which may deactivate: pages give way until it is done.
    let _pages_held = pool.hold_pages();
    let mut conn = pool.get().await?;
    let org = client.org_id();
    let if_match = IfMatch::of(&req);
    let user = conn
        .transaction::<_, ScimError, _>(async |conn| {
            let user = User::lock_in_org(conn, org, id)
                .await?
                .ok_or_else(not_found)?;
            if_match.check(user.version)?;
            let current = UserDraft {
                attributes: UserAttributes::of(&user),
                active: user.state == AccountState::Active,
            };
            let draft = match (&change, &operations) {
                (Change::Patch(_), Some(operations)) => {
                    let mut draft = current;
                    draft.apply(operations)?;
                    draft
                }
                (Change::Replace(body), _) | (Change::Patch(body), None) => {
                    UserDraft::from_body(body, Some(&current))?
                }
            };
            write(conn, &client, user, &draft, by).await
        })
        .await?;
    let body = render(&mut conn, &user, &base(&url)).await?;
    Ok(reply::resource(StatusCode::OK, &body, Some(user.version)))
}

#[allow(
    clippy::too_many_arguments,
    reason = "each argument is an actix extractor"
)]
async fn replace_user(
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

#[allow(
    clippy::too_many_arguments,
    reason = "each argument is an actix extractor"
)]
async fn patch_user(
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

/// Deletes the user (soft: its email is free again at once), ending every session and token.
async fn delete_user(
    client: ScimClient,
    req: HttpRequest,
    id: web::Path<String>,
    pool: web::Data<RevocationPool>,
    request_id: RequestId,
) -> Result<HttpResponse, ScimError> {
    let id = user_id(&id)?;
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Scim, &client.actor, &request_id);
    let org = client.org_id();
    let if_match = IfMatch::of(&req);
    let _pages_held = pool.hold_pages();
    let mut conn = pool.get().await?;
    conn.transaction::<_, ScimError, _>(async |conn| {
        let user = User::lock_in_org(conn, org, id)
            .await?
            .ok_or_else(not_found)?;
        if_match.check(user.version)?;
        revocation::lifecycle::set_locked_state(conn, org, user, AccountState::Deleted, by).await?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
