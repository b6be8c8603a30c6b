use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::{
    db::{
        ids::{OrgId, UserId},
        models::{
            Org,
            user::{NotDeleted, lower},
        },
        schema::{org_api_keys, orgs, users},
    },
    secret_token::{self, Issued, Kind, Presented},
};

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

/// A presented key that matched a live one.
#[derive(Debug)]
pub struct KeyMatch {
    pub key: OrgApiKey,
    pub org: Org,
    /// The org's user with the email asked for (`None`: none asked, or no such user).
    pub user: Option<UserId>,
}

/// A key an IdP uses to call Universal Logout for one org. Holds no secret: only its hash.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = org_api_keys, check_for_backend(diesel::pg::Pg))]
pub struct OrgApiKey {
    pub id: uuid::Uuid,
    pub org_id: OrgId,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl OrgApiKey {
    /// Issues a key for the org; the returned secret is the only copy.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        org: OrgId,
    ) -> QueryResult<(OrgApiKey, Issued)> {
        let issued = secret_token::issue(Kind::OrgApiKey);
        let key = diesel::insert_into(org_api_keys::table)
            .values((
                org_api_keys::org_id.eq(org),
                org_api_keys::prefix.eq(&issued.prefix),
                org_api_keys::key_hash.eq(&issued.hash[..]),
            ))
            .returning(OrgApiKey::as_returning())
            .get_result(conn)
            .await?;
        Ok((key, issued))
    }

    /// The live key a caller presented, with its org, and the org's user with `email` when one
    /// is given: one statement, so that a Universal Logout naming its user by email costs one
    /// round trip before the revocation. Looked up by prefix, hash compared in constant time.
    pub async fn authenticate(
        conn: &mut AsyncPgConnection,
        presented: &Presented,
        email: Option<&str>,
    ) -> QueryResult<Option<KeyMatch>> {
        // A NULL email matches nobody: no user is read.
        let email = email.map(str::to_lowercase);
        let found: Option<(OrgApiKey, Org, Option<UserId>)> = org_api_keys::table
            .inner_join(orgs::table)
            .left_join(
                users::table.on(users::org_id
                    .eq(orgs::id)
                    .and(NotDeleted)
                    .and(lower(users::email).nullable().eq(email))),
            )
            .filter(org_api_keys::prefix.eq(&presented.prefix))
            .select((
                OrgApiKey::as_select(),
                Org::as_select(),
                users::id.nullable(),
            ))
            .first(conn)
            .await
            .optional()?;
        let Some((key, org, user)) =
            found.filter(|(k, _, _)| secret_token::matches(&k.key_hash, presented))
        else {
            return Ok(None);
        };
        if key.revoked_at.is_some() {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        if key.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
            diesel::update(org_api_keys::table.find(key.id))
                .set(org_api_keys::last_used_at.eq(now))
                .execute(conn)
                .await?;
        }
        Ok(Some(KeyMatch { key, org, user }))
    }

    /// The org's keys, newest first, revoked ones included.
    pub async fn list_for_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
    ) -> QueryResult<Vec<OrgApiKey>> {
        org_api_keys::table
            .filter(org_api_keys::org_id.eq(org))
            .order(org_api_keys::created_at.desc())
            .select(OrgApiKey::as_select())
            .load(conn)
            .await
    }

    /// Revokes the org's key with this prefix; `None` when the org has no live key by that prefix.
    pub async fn revoke(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        prefix: &str,
    ) -> QueryResult<Option<OrgApiKey>> {
        diesel::update(
            org_api_keys::table
                .filter(org_api_keys::org_id.eq(org))
                .filter(org_api_keys::prefix.eq(prefix))
                .filter(org_api_keys::revoked_at.is_null()),
        )
        .set(org_api_keys::revoked_at.eq(OffsetDateTime::now_utc()))
        .returning(OrgApiKey::as_returning())
        .get_result(conn)
        .await
        .optional()
    }
}
