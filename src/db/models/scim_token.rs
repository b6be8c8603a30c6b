use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::{
    db::{
        ids::OrgId,
        models::Org,
        schema::{orgs, scim_tokens},
    },
    secret_token::{self, Issued, Kind, Presented},
};

/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

/// A credential of an org's SCIM client: a long-lived bearer token made by an admin or operator,
/// or a short-lived OAuth access token from `POST /oauth/token` (with `expires_at` and the
/// `client_id` that obtained it). Holds no secret: only its hash.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = scim_tokens, check_for_backend(diesel::pg::Pg))]
pub struct ScimToken {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    pub prefix: String,
    pub token_hash: Vec<u8>,
    pub client_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl ScimToken {
    /// Issues a long-lived token for the org; the returned secret is the only copy.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        org: OrgId,
    ) -> QueryResult<(ScimToken, Issued)> {
        Self::insert(conn, org, None, None).await
    }

    /// Issues an access token to OAuth client `client_id`, valid until `expires_at`.
    pub async fn issue_for_client(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        client_id: &str,
        expires_at: OffsetDateTime,
    ) -> QueryResult<(ScimToken, Issued)> {
        Self::insert(conn, org, Some(client_id), Some(expires_at)).await
    }

    async fn insert(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        client_id: Option<&str>,
        expires_at: Option<OffsetDateTime>,
    ) -> QueryResult<(ScimToken, Issued)> {
        let issued = secret_token::issue(Kind::ScimToken);
        let token = diesel::insert_into(scim_tokens::table)
            .values((
                scim_tokens::org_id.eq(org),
                scim_tokens::prefix.eq(&issued.prefix),
                scim_tokens::token_hash.eq(&issued.hash[..]),
                scim_tokens::client_id.eq(client_id),
                scim_tokens::expires_at.eq(expires_at),
            ))
            .returning(ScimToken::as_returning())
            .get_result(conn)
            .await?;
        Ok((token, issued))
    }

    /// The live token a caller presented, with its org (one query): looked up by prefix, hash
    /// compared in constant time; revoked and expired tokens are refused.
    pub async fn authenticate(
        conn: &mut AsyncPgConnection,
        presented: &Presented,
    ) -> QueryResult<Option<(ScimToken, Org)>> {
        let found: Option<(ScimToken, Org)> = scim_tokens::table
            .inner_join(orgs::table)
            .filter(scim_tokens::prefix.eq(&presented.prefix))
            .select((ScimToken::as_select(), Org::as_select()))
            .first(conn)
            .await
            .optional()?;
        let Some((token, org)) =
            found.filter(|(t, _)| secret_token::matches(&t.token_hash, presented))
        else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        if token.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
            diesel::update(scim_tokens::table.find(token.id))
                .set(scim_tokens::last_used_at.eq(now))
                .execute(conn)
                .await?;
        }
        Ok(Some((token, org)))
    }

    /// The org's long-lived tokens, newest first, revoked ones included (OAuth access tokens are
    /// short-lived and not listed).
    pub async fn list_for_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
    ) -> QueryResult<Vec<ScimToken>> {
        scim_tokens::table
            .filter(scim_tokens::org_id.eq(org))
            .filter(scim_tokens::expires_at.is_null())
            .order(scim_tokens::created_at.desc())
            .select(ScimToken::as_select())
            .load(conn)
            .await
    }

    /// Revokes the org's token with this prefix; `None` when the org has no live token by it.
    pub async fn revoke(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        prefix: &str,
    ) -> QueryResult<Option<ScimToken>> {
        diesel::update(
            scim_tokens::table
                .filter(scim_tokens::org_id.eq(org))
                .filter(scim_tokens::prefix.eq(prefix))
                .filter(scim_tokens::revoked_at.is_null()),
        )
        .set(scim_tokens::revoked_at.eq(OffsetDateTime::now_utc()))
        .returning(ScimToken::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes expired access tokens; returns how many.
    pub async fn sweep_expired(
        conn: &mut AsyncPgConnection,
        now: OffsetDateTime,
    ) -> QueryResult<usize> {
        diesel::delete(scim_tokens::table.filter(scim_tokens::expires_at.lt(now)))
            .execute(conn)
            .await
    }
}
