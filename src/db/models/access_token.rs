use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::{
    db::{
        ids::{AccountState, OrgId, UserId},
        schema::{access_tokens, users},
    },
    secret_token::{self, Issued, Kind, Presented},
};

/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

/// The longest token name, in characters (the table checks it too).
pub const MAX_NAME_CHARS: usize = 100;

/// A personal access token for the JSON API. Holds no secret: only its hash.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = access_tokens, check_for_backend(diesel::pg::Pg))]
pub struct AccessToken {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub token_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl AccessToken {
    /// Issues a token for the user; the returned secret is the only copy.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        user: UserId,
        name: &str,
    ) -> QueryResult<(AccessToken, Issued)> {
        let issued = secret_token::issue(Kind::AccessToken);
        let token = diesel::insert_into(access_tokens::table)
            .values((
                access_tokens::user_id.eq(user),
                access_tokens::name.eq(name),
                access_tokens::prefix.eq(&issued.prefix),
                access_tokens::token_hash.eq(&issued.hash[..]),
            ))
            .returning(AccessToken::as_returning())
            .get_result(conn)
            .await?;
        Ok((token, issued))
    }

    /// The live token of an active user that a caller presented, with its user's org: looked
    /// up by prefix, hash compared in constant time.
    pub async fn authenticate(
        conn: &mut AsyncPgConnection,
        presented: &Presented,
    ) -> QueryResult<Option<(AccessToken, OrgId)>> {
        let found: Option<(AccessToken, OrgId)> = access_tokens::table
            .inner_join(users::table)
            .filter(access_tokens::prefix.eq(&presented.prefix))
            .filter(users::state.eq(AccountState::Active))
            .select((AccessToken::as_select(), users::org_id))
            .first(conn)
            .await
            .optional()?;
        let Some((token, org)) =
            found.filter(|(t, _)| secret_token::matches(&t.token_hash, presented))
        else {
            return Ok(None);
        };
        if token.revoked_at.is_some() {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        if token.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
            diesel::update(access_tokens::table.find(token.id))
                .set(access_tokens::last_used_at.eq(now))
                .execute(conn)
                .await?;
        }
        Ok(Some((token, org)))
    }

    /// The user's tokens, newest first, revoked ones included.
    pub async fn list_for_user(
        conn: &mut AsyncPgConnection,
        user: UserId,
    ) -> QueryResult<Vec<AccessToken>> {
        access_tokens::table
            .filter(access_tokens::user_id.eq(user))
            .order(access_tokens::created_at.desc())
            .select(AccessToken::as_select())
            .load(conn)
            .await
    }

    /// Revokes one live token of the user; `false` when the user has no such live token.
    pub async fn revoke_one(
        conn: &mut AsyncPgConnection,
        user: UserId,
        id: uuid::Uuid,
    ) -> QueryResult<bool> {
        let revoked = diesel::update(
            access_tokens::table
                .filter(access_tokens::id.eq(id))
                .filter(access_tokens::user_id.eq(user))
                .filter(access_tokens::revoked_at.is_null()),
        )
        .set(access_tokens::revoked_at.eq(OffsetDateTime::now_utc()))
        .execute(conn)
        .await?;
        Ok(revoked == 1)
    }
}
