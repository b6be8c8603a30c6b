use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{OrgId, SessionId},
    schema::oidc_logins,
};

/// An SSO sign-in between its start and its callback: what the callback needs to check the
/// IdP's answer. Used once.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = oidc_logins, check_for_backend(diesel::pg::Pg))]
pub struct OidcLogin {
    pub state_hash: Vec<u8>,
    pub org_id: OrgId,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The `max_age` asked of the IdP, in seconds.
    pub max_age: Option<i32>,
    /// Where the browser goes after signing in (a path of this app).
    pub land_on: Option<String>,
    /// The session that asked to end every other session of its user once this (fresh)
    /// sign-in confirms it is them.
    pub end_others_of: Option<SessionId>,
}

/// A sign-in to record as it starts.
#[derive(Insertable)]
#[diesel(table_name = oidc_logins)]
pub struct NewOidcLogin<'a> {
    pub state_hash: &'a [u8],
    pub org_id: OrgId,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub expires_at: OffsetDateTime,
    pub max_age: Option<i32>,
    pub land_on: Option<&'a str>,
    pub end_others_of: Option<SessionId>,
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLogin")
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

impl OidcLogin {
    /// Records a sign-in in progress.
    pub async fn create(conn: &mut AsyncPgConnection, new: &NewOidcLogin<'_>) -> QueryResult<()> {
        diesel::insert_into(oidc_logins::table)
            .values(new)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Takes (deletes and returns) the sign-in with this state, unless it has expired.
    pub async fn take(
        conn: &mut AsyncPgConnection,
        state_hash: &[u8],
    ) -> QueryResult<Option<OidcLogin>> {
        let taken: Option<OidcLogin> = diesel::delete(oidc_logins::table.find(state_hash))
            .returning(OidcLogin::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        Ok(taken.filter(|login| login.expires_at > OffsetDateTime::now_utc()))
    }

    /// Forgets sign-ins that were never finished.
    pub async fn delete_expired(
        conn: &mut AsyncPgConnection,
        now: OffsetDateTime,
    ) -> QueryResult<usize> {
        diesel::delete(oidc_logins::table.filter(oidc_logins::expires_at.lt(now)))
            .execute(conn)
            .await
    }
}
