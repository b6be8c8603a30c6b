use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{AccountState, OrgId, SessionId, UserId},
    models::known_device,
    schema::{sessions, users},
};

/// The most sessions `/account/sessions` lists (a script signing in in a loop could make
/// thousands); "end every other session" still ends them all.
pub const MAX_LISTED: i64 = 200;

/// A row of the session store. `id` is the SHA-256 of the cookie's key, never the key itself.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionRecord {
    pub id: Vec<u8>,
    pub public_id: SessionId,
    pub user_id: Option<UserId>,
    pub org_id: Option<OrgId>,
    pub state: serde_json::Value,
    pub oidc_sid: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// When the person authenticated at the IdP (SSO sessions).
    pub auth_time: Option<OffsetDateTime>,
    /// When the IdP's session ends, and this one with it at the latest.
    pub idp_ends_at: Option<OffsetDateTime>,
    /// Since when the session must authenticate again before going on.
    pub reauth_requested_at: Option<OffsetDateTime>,
    /// How it signed in: `password` or `sso` (unknown for sessions older than the column).
    pub method: Option<String>,
    /// Signed in from a device its user had not signed in from before.
    pub new_device: bool,
}

/// What `load` needs of a live session.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct LiveSession {
    pub state: RawJson,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub idp_ends_at: Option<OffsetDateTime>,
    pub reauth_requested_at: Option<OffsetDateTime>,
}

/// A session as the admin dashboard lists it: no state, no key hash.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionSummary {
    pub public_id: SessionId,
    pub user_id: Option<UserId>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

/// A `jsonb` value as its JSON text, not yet parsed: the session store reads the state straight
/// into its map.
#[derive(Debug, diesel::deserialize::FromSqlRow)]
pub struct RawJson(pub Vec<u8>);

impl diesel::deserialize::FromSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for RawJson {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        // The binary format: a version byte, then the JSON text.
        match value.as_bytes() {
            [1, json @ ..] => Ok(Self(json.to_vec())),
            _ => Err("unsupported jsonb version".into()),
        }
    }
}

/// A session row to insert. `None` is written as NULL (what every nullable column defaults to),
/// not as `DEFAULT`, so rows can also be written with `COPY` (the bench's bulk seeding).
#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct NewSession<'a> {
    pub id: &'a [u8],
    pub public_id: SessionId,
    pub user_id: Option<UserId>,
    pub org_id: Option<OrgId>,
    pub state: &'a serde_json::Value,
    pub oidc_sid: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub auth_time: Option<OffsetDateTime>,
    pub idp_ends_at: Option<OffsetDateTime>,
    pub method: Option<&'a str>,
    pub new_device: bool,
}

/// A session as its own user sees it on `/account/sessions`: no state, no key hash.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct OwnSession {
    pub public_id: SessionId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub method: Option<String>,
    pub new_device: bool,
}

impl SessionRecord {
    /// The session with this key hash, unless it has expired: one primary-key read.
    pub async fn find_live(
        conn: &mut AsyncPgConnection,
        id: &[u8],
        now: OffsetDateTime,
    ) -> QueryResult<Option<LiveSession>> {
        sessions::table
            .find(id)
            .filter(sessions::expires_at.gt(now))
            .select(LiveSession::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Inserts a session; one of a user who is not active is not inserted (`false`). The user's
    /// row is read `FOR SHARE`, so an insert racing a suspension waits for it to commit and
    /// then sees the new state: a suspension can never miss a session being created. A signed-in
    /// session's device is recorded among the user's known devices, and marked if it is new.
    pub async fn insert(conn: &mut AsyncPgConnection, new: &NewSession<'_>) -> QueryResult<bool> {
        let Some(user) = new.user_id else {
            return Self::insert_row(conn, new).await.map(|()| true);
        };
        conn.transaction(async |conn| {
            let active = users::table
                .find(user)
                .filter(users::state.eq(AccountState::Active))
                .select(users::id)
                .for_share()
                .first::<UserId>(conn)
                .await
                .optional()?;
            if active.is_none() {
                return Ok(false);
            }
            let new_device = known_device::seen(conn, user, new.user_agent, new.ip).await?;
            let new = NewSession {
                new_device,
                ..new.clone()
            };
            Self::insert_row(conn, &new).await.map(|()| true)
        })
        .await
    }

    async fn insert_row(conn: &mut AsyncPgConnection, new: &NewSession<'_>) -> QueryResult<()> {
        diesel::insert_into(sessions::table)
            .values(new)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Replaces the state of a live session. Returns `false`, and writes nothing, when the row is
    /// gone: a revoked session is never re-created.
    pub async fn update_state(
        conn: &mut AsyncPgConnection,
        id: &[u8],
        state: &serde_json::Value,
        now: OffsetDateTime,
    ) -> QueryResult<bool> {
        let updated = diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::expires_at.gt(now)),
        )
        .set(sessions::state.eq(state))
        .execute(conn)
        .await?;
        Ok(updated == 1)
    }

    /// Records activity: `last_seen_at` and the idle deadline move forward.
    pub async fn touch(
        conn: &mut AsyncPgConnection,
        id: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> QueryResult<()> {
        diesel::update(
            sessions::table
                .find(id)
                .filter(sessions::expires_at.gt(now)),
        )
        .set((
            sessions::last_seen_at.eq(now),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
    }

    /// Asks every session of `user` to authenticate again; returns how many.
    pub async fn request_reauth(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        user: UserId,
    ) -> QueryResult<usize> {
        diesel::update(
            sessions::table
                .filter(sessions::org_id.eq(org))
                .filter(sessions::user_id.eq(user)),
        )
        .set(sessions::reauth_requested_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
    }

    /// The session `id` has authenticated again: it goes on.
    pub async fn reauthenticated(conn: &mut AsyncPgConnection, id: SessionId) -> QueryResult<()> {
        diesel::update(sessions::table.filter(sessions::public_id.eq(id)))
            .set(sessions::reauth_requested_at.eq(None::<OffsetDateTime>))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Sessions whose IdP session has ended by `now` (oldest first, at most `limit`), with
    /// their orgs.
    pub async fn idp_ended(
        conn: &mut AsyncPgConnection,
        now: OffsetDateTime,
        limit: i64,
    ) -> QueryResult<Vec<(Option<OrgId>, SessionId)>> {
        sessions::table
            .filter(sessions::idp_ends_at.le(now))
            .filter(sessions::org_id.is_not_null())
            .order(sessions::idp_ends_at)
            .limit(limit)
            .select((sessions::org_id, sessions::public_id))
            .load(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: &[u8]) -> QueryResult<()> {
        diesel::delete(sessions::table.find(id))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Deletes up to `batch` expired rows; returns how many went.
    pub async fn delete_expired(
        conn: &mut AsyncPgConnection,
        now: OffsetDateTime,
        batch: i64,
    ) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM sessions WHERE id IN \
             (SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2)",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(batch)
        .execute(conn)
        .await
    }

    /// Which of these sessions still exist and have not expired.
    pub async fn live_among(
        conn: &mut AsyncPgConnection,
        ids: &[SessionId],
    ) -> QueryResult<Vec<SessionId>> {
        sessions::table
            .filter(sessions::public_id.eq_any(ids))
            .filter(sessions::expires_at.gt(diesel::dsl::now))
            .select(sessions::public_id)
            .load(conn)
            .await
    }

    /// The live sessions of some users of the org, newest first.
    pub async fn live_for_users(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        users: &[UserId],
    ) -> QueryResult<Vec<SessionSummary>> {
        sessions::table
            .filter(sessions::org_id.eq(org))
            .filter(sessions::user_id.eq_any(users))
            .filter(sessions::expires_at.gt(diesel::dsl::now))
            .order(sessions::created_at.desc())
            .select(SessionSummary::as_select())
            .load(conn)
            .await
    }

    /// The live sessions of `user` (of `org`), most recently active first.
    pub async fn live_of_user(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        user: UserId,
    ) -> QueryResult<Vec<OwnSession>> {
        sessions::table
            .filter(sessions::org_id.eq(org))
            .filter(sessions::user_id.eq(user))
            .filter(sessions::expires_at.gt(diesel::dsl::now))
            .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
            .limit(MAX_LISTED)
            .select(OwnSession::as_select())
            .load(conn)
            .await
    }

    /// How many live signed-in sessions the org has.
    pub async fn count_live_for_org(conn: &mut AsyncPgConnection, org: OrgId) -> QueryResult<i64> {
        sessions::table
            .filter(sessions::org_id.eq(org))
            .filter(sessions::user_id.is_not_null())
            .filter(sessions::expires_at.gt(diesel::dsl::now))
            .count()
            .get_result(conn)
            .await
    }
}
