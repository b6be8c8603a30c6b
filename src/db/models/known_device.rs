//! The devices a user has signed in from (browser and system, with the address's network), so
//! that a sign-in from a new one can be told. Bounded: at most [`MAX_PER_USER`] per user.

use diesel::{
    QueryableByName,
    sql_types::{Bool, Text, Uuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{db::ids::UserId, user_agent};

/// Devices remembered per user; signing in from one more forgets the one least recently seen.
pub const MAX_PER_USER: i64 = 20;

/// Records a sign-in from this device, and says whether it is new: not among the devices the
/// user signed in from before. A user's first sign-in (nothing known yet) is not new: there is
/// no other device to warn.
const SEEN: &str = "
WITH known AS (
    SELECT count(*) AS n FROM known_devices WHERE user_id = $1
), upserted AS (
    INSERT INTO known_devices AS k (user_id, device, network) VALUES ($1, $2, $3)
    ON CONFLICT (user_id, device, network) DO UPDATE SET last_seen_at = now()
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT inserted FROM upserted) AND (SELECT n FROM known) > 0 AS new_device";

/// Forgets the user's least recently seen devices beyond the cap.
const TRIM: &str = "
DELETE FROM known_devices WHERE user_id = $1 AND (device, network) NOT IN (
    SELECT device, network FROM known_devices WHERE user_id = $1
    ORDER BY last_seen_at DESC LIMIT $2)";

#[derive(QueryableByName)]
struct Seen {
    #[diesel(sql_type = Bool)]
    new_device: bool,
}

/// Records that `user` signed in with `user_agent` from `ip`; whether the device is new.
pub async fn seen(
    conn: &mut AsyncPgConnection,
    user: UserId,
    user_agent: Option<&str>,
    ip: Option<&str>,
) -> diesel::QueryResult<bool> {
    let device = user_agent::describe(user_agent);
    let network = user_agent::network(ip);
    let seen: Seen = diesel::sql_query(SEEN)
        .bind::<Uuid, _>(user.0)
        .bind::<Text, _>(&device)
        .bind::<Text, _>(&network)
        .get_result(conn)
        .await?;
    if seen.new_device {
        diesel::sql_query(TRIM)
            .bind::<Uuid, _>(user.0)
            .bind::<diesel::sql_types::BigInt, _>(MAX_PER_USER)
            .execute(conn)
            .await?;
    }
    Ok(seen.new_device)
}
