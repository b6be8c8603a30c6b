use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{OrgId, SessionId, UserId},
    schema::org_logouts,
};

/// A run of "sign out everyone in the org" whose progress has not moved for this long is taken
/// to be dead (its instance stopped): it no longer blocks a new run, and pages say so. A batch
/// takes well under a second.
pub const STALE_AFTER: time::Duration = time::Duration::minutes(2);

/// One run of "sign out everyone in the org", with its progress so far.
#[derive(Clone, Debug, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = org_logouts, check_for_backend(diesel::pg::Pg))]
pub struct OrgLogout {
    pub id: i64,
    pub org_id: OrgId,
    pub source: String,
    pub actor: String,
    pub spared_session_id: Option<SessionId>,
    pub users_total: i32,
    pub users_done: i32,
    pub sessions_ended: i64,
    pub tokens_revoked: i64,
    pub last_user_id: Option<UserId>,
    pub started_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub failure: Option<String>,
}

impl OrgLogout {
    /// Records a new run for `org`, counting its users; `None` while another run of the org is
    /// going (a run gone stale is closed first, as interrupted).
    pub async fn start(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        source: &str,
        actor: &str,
        spared: Option<SessionId>,
    ) -> QueryResult<Option<OrgLogout>> {
        conn.transaction(async |conn| {
            diesel::update(org_logouts::table)
                .filter(org_logouts::org_id.eq(org))
                .filter(org_logouts::finished_at.is_null())
                .filter(org_logouts::updated_at.lt(OffsetDateTime::now_utc() - STALE_AFTER))
                .set((
                    org_logouts::finished_at.eq(diesel::dsl::now),
                    org_logouts::failure.eq("interrupted: its instance stopped"),
                ))
                .execute(conn)
                .await?;
            diesel::sql_query(
                "INSERT INTO org_logouts (org_id, source, actor, spared_session_id, users_total)
                 SELECT $1, $2, $3, $4, count(*)::int FROM users
                 WHERE org_id = $1 AND state <> 'deleted'
                 ON CONFLICT (org_id) WHERE finished_at IS NULL DO NOTHING
                 RETURNING *",
            )
            .bind::<sql_types::Uuid, _>(org)
            .bind::<sql_types::Text, _>(source)
            .bind::<sql_types::Text, _>(actor)
            .bind::<sql_types::Nullable<sql_types::Uuid>, _>(spared)
            .get_result(conn)
            .await
            .optional()
        })
        .await
    }

    /// The org's latest run, going or done.
    pub async fn latest(
        conn: &mut AsyncPgConnection,
        org: OrgId,
    ) -> QueryResult<Option<OrgLogout>> {
        org_logouts::table
            .filter(org_logouts::org_id.eq(org))
            .order(org_logouts::started_at.desc())
            .select(OrgLogout::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Marks the run done, or failed with `failure`.
    pub async fn finish(
        conn: &mut AsyncPgConnection,
        id: i64,
        failure: Option<&str>,
    ) -> QueryResult<OrgLogout> {
        diesel::update(org_logouts::table.find(id))
            .set((
                org_logouts::finished_at.eq(diesel::dsl::now),
                org_logouts::updated_at.eq(diesel::dsl::now),
                org_logouts::failure.eq(failure),
            ))
            .returning(OrgLogout::as_returning())
            .get_result(conn)
            .await
    }

    /// Whether the run is still going (not finished, and not gone stale).
    pub fn is_running(&self) -> bool {
        self.finished_at.is_none() && self.updated_at > OffsetDateTime::now_utc() - STALE_AFTER
    }
}
