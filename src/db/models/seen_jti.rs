use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::schema::seen_jtis;

/// JWT ids already used, kept until their JWT expires.
pub struct SeenJti;

impl SeenJti {
    /// Whether `issuer` has already used `jti`.
    pub async fn exists(
        conn: &mut AsyncPgConnection,
        issuer: &str,
        jti: &str,
    ) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(seen_jtis::table.find((issuer, jti))))
            .get_result(conn)
            .await
    }

    /// Records a use; `false` when it was already recorded (a replay).
    pub async fn record(
        conn: &mut AsyncPgConnection,
        issuer: &str,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> QueryResult<bool> {
        let inserted = diesel::insert_into(seen_jtis::table)
            .values((
                seen_jtis::issuer.eq(issuer),
                seen_jtis::jti.eq(jti),
                seen_jtis::expires_at.eq(expires_at),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(inserted == 1)
    }

    /// Forgets ids whose JWTs have expired (they can no longer be replayed).
    pub async fn delete_expired(
        conn: &mut AsyncPgConnection,
        now: OffsetDateTime,
    ) -> QueryResult<usize> {
        diesel::delete(seen_jtis::table.filter(seen_jtis::expires_at.lt(now)))
            .execute(conn)
            .await
    }
}
