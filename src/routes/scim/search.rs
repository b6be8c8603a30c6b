//! `POST /.search` at the root (RFC 7644 §3.4.3): a search over users and groups at once
//! (users first). `/Users/.search` and `/Groups/.search` live with their resources.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    client::ScimClient,
    groups,
    reply::{self, base},
    users,
};
use crate::{
    config::PublicUrl,
    db::Pool,
    scim::{
        error::ScimError,
        list::{self, Page},
        search::query,
    },
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/.search")
            .route(web::post().to(search_all))
            .default_service(web::to(reply::method_not_allowed)),
    );
}

/// `POST /.search`: users, then groups, as one list. A filter on an attribute only one of
/// them has (`userName`, `members`) finds none of the other.
async fn search_all(
    client: ScimClient,
    req: HttpRequest,
    payload: web::Payload,
    pool: web::Data<Pool>,
    url: web::Data<PublicUrl>,
) -> Result<HttpResponse, ScimError> {
    let query = query(&reply::json_body(&req, payload).await?)?;
    let page = Page::from_query(&query)?;
    let base = base(&url);
    let org = client.org_id();
    let mut conn = pool.get().await?;
    let found_users = users::page(&mut conn, org, &query, (page.offset(), page.count), &base).await;
    let (mut resources, users_total) = found_users.as_ref().cloned().unwrap_or_default();
    let left = page.count - i64::try_from(resources.len()).unwrap_or(page.count);
    let offset = (page.offset() - users_total).max(0);
    let found_groups = groups::page(&mut conn, org, &query, (offset, left), &base).await;
    // Only a filter neither resource type understands is an error.
    let groups_total = match (found_users, found_groups) {
        (Err(e), _) | (_, Err(e)) if e.scim_type != Some("invalidFilter") => return Err(e),
        (Err(e), Err(_)) => return Err(e),
        (_, Ok((groups, total))) => {
            resources.extend(groups);
            total
        }
        (Ok(_), Err(_)) => 0,
    };
    Ok(reply::document(&list::response(
        resources,
        users_total + groups_total,
        page,
    )))
}
