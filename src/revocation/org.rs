//! "Sign out everyone in the org": every session and personal access token of every user of an
//! org ends, except (from the dashboard) the admin's own current session.
//!
//! The org's users are taken in batches by keyset on their id; each batch is one statement (so
//! one short transaction) that ends the batch's sessions and tokens, writes one audit row and
//! one `NOTIFY` per user, and moves the run's progress ([`OrgLogout`]) in the same commit. A
//! batch locks only its own users' rows, for well under a second, so Universal Logout, SCIM and
//! Shared Signals requests never wait long behind a run, whatever the org's size.

use std::time::{Duration, Instant};

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Integer, Nullable, Text, Uuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{CHANNEL, Requester};
use crate::db::{
    ids::{OrgId, SessionId, UserId},
    models::OrgLogout,
};

/// Users per batch: big enough that 10,000 users take a few seconds, small enough that a batch
/// (a few thousand sessions) commits in well under a second.
pub const BATCH_USERS: i64 = 500;

/// The longest rest between two batches.
const MAX_REST: Duration = Duration::from_secs(1);

/// After each batch a run rests as long as the batch took (at most [`MAX_REST`]): it keeps the
/// database busy at most half of the time, so other orgs' revocations (Universal Logout, SCIM,
/// Shared Signals) meanwhile find the CPU, the WAL and the `NOTIFY` queue free half of it. On a
/// loaded two-core machine this lowered their p99 during a 10,000-user run from 37-55 ms to
/// 24-29 ms, for a run of about 4 s instead of 2 (bench `org-logout`).
pub async fn rest_after(batch_took: Duration) {
    tokio::time::sleep(batch_took.min(MAX_REST)).await;
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum OrgLogoutError {
    #[error("a sign-out of everyone in the organisation is already running")]
    AlreadyRunning(Box<OrgLogout>),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// What one batch ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub users: usize,
    pub sessions_ended: usize,
    pub tokens_revoked: usize,
}

/// One batch: the next `$3` users of org `$1` after `$2`, by id. Ends their sessions (all but
/// the spared one, `$4`), revokes their tokens, writes an audit row per user (source `$5`, actor
/// `$6`, request `$7`, detail naming run `$9`), moves the run's progress, and announces each
/// user on `$8`: an empty `session_ids` means every session of the user but the spared one.
const BATCH: &str = "
WITH batch AS (
    SELECT id FROM users
    WHERE org_id = $1 AND state <> 'deleted' AND ($2::uuid IS NULL OR id > $2)
    ORDER BY id LIMIT $3
), ended AS (
    DELETE FROM sessions s USING batch b
    WHERE s.org_id = $1 AND s.user_id = b.id AND s.public_id IS DISTINCT FROM $4
    RETURNING s.user_id
), tokens AS (
    UPDATE access_tokens t SET revoked_at = now() FROM batch b
    WHERE t.user_id = b.id AND t.revoked_at IS NULL
    RETURNING t.user_id
), ended_n AS (
    SELECT user_id, count(*)::int AS n FROM ended GROUP BY user_id
), tokens_n AS (
    SELECT user_id, count(*)::int AS n FROM tokens GROUP BY user_id
), audit AS (
    INSERT INTO revocations (org_id, user_id, source, actor, sessions_ended, tokens_revoked,
                             request_id, action, detail)
    SELECT $1, b.id, $5, $6, coalesce(e.n, 0), coalesce(t.n, 0), $7, 'revoke',
           jsonb_build_object('org_logout', $9::bigint)
    FROM batch b
    LEFT JOIN ended_n e ON e.user_id = b.id
    LEFT JOIN tokens_n t ON t.user_id = b.id
    RETURNING id, user_id, sessions_ended, tokens_revoked, created_at
), progress AS (
    UPDATE org_logouts SET
        users_done = users_done + (SELECT count(*) FROM batch),
        sessions_ended = sessions_ended + (SELECT count(*) FROM ended),
        tokens_revoked = tokens_revoked + (SELECT count(*) FROM tokens),
        last_user_id = coalesce((SELECT id FROM batch ORDER BY id DESC LIMIT 1), last_user_id),
        updated_at = now()
    WHERE id = $9
    RETURNING 1
)
SELECT audit.user_id, audit.sessions_ended, audit.tokens_revoked,
       pg_notify($8, json_build_object(
           'revocation_id', audit.id, 'org_id', $1, 'user_id', audit.user_id,
           'session_ids', ARRAY[]::uuid[], 'spared_session_id', $4::uuid, 'source', $5,
           'actor', left($6, 200), 'sessions_ended', audit.sessions_ended, 'action', 'revoke',
           'at_ms', (extract(epoch FROM audit.created_at) * 1000)::bigint)::text) AS notified
FROM audit";

#[derive(QueryableByName)]
struct Ended {
    #[diesel(sql_type = Uuid)]
    user_id: UserId,
    #[diesel(sql_type = Integer)]
    sessions_ended: i32,
    #[diesel(sql_type = Integer)]
    tokens_revoked: i32,
}

/// Starts a run for `org` (its users counted now), sparing `spared` (the asking admin's
/// session); refused while another run of the org is going, on any instance.
pub async fn start(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    spared: Option<SessionId>,
    by: Requester<'_>,
) -> Result<OrgLogout, OrgLogoutError> {
    if let Some(run) = OrgLogout::start(conn, org, by.source.as_str(), by.actor, spared).await? {
        tracing::info!(org_id = %org, run = run.id, users = run.users_total,
            source = by.source.as_str(), "started signing out everyone in an org");
        return Ok(run);
    }
    let going = OrgLogout::latest(conn, org).await?;
    Err(match going {
        Some(run) => OrgLogoutError::AlreadyRunning(Box::new(run)),
        // Finished between the two statements: say so rather than invent a run.
        None => diesel::result::Error::NotFound.into(),
    })
}

/// Signs out the next batch of `run`'s users (at most `size`), in one statement, and moves
/// `run`'s progress. A batch of no users means the run has reached the end of the org.
pub async fn next_batch(
    conn: &mut AsyncPgConnection,
    run: &mut OrgLogout,
    by: Requester<'_>,
    size: i64,
) -> diesel::QueryResult<Batch> {
    let rows: Vec<Ended> = diesel::sql_query(BATCH)
        .bind::<Uuid, _>(run.org_id)
        .bind::<Nullable<Uuid>, _>(run.last_user_id)
        .bind::<BigInt, _>(size)
        .bind::<Nullable<Uuid>, _>(run.spared_session_id)
        .bind::<Text, _>(by.source.as_str())
        .bind::<Text, _>(by.actor)
        .bind::<Nullable<Text>, _>(by.request_id)
        .bind::<Text, _>(CHANNEL)
        .bind::<BigInt, _>(run.id)
        .load(conn)
        .await?;
    let batch = Batch {
        users: rows.len(),
        sessions_ended: rows.iter().map(|r| count(r.sessions_ended)).sum(),
        tokens_revoked: rows.iter().map(|r| count(r.tokens_revoked)).sum(),
    };
    if let Some(last) = rows.iter().map(|r| r.user_id).max() {
        run.last_user_id = Some(last);
    }
    let users = i32::try_from(batch.users).unwrap_or(i32::MAX);
    run.users_done = run.users_done.saturating_add(users);
    run.sessions_ended += i64::try_from(batch.sessions_ended).unwrap_or(i64::MAX);
    run.tokens_revoked += i64::try_from(batch.tokens_revoked).unwrap_or(i64::MAX);
    Ok(batch)
}

fn count(n: i32) -> usize {
    usize::try_from(n).unwrap_or_default()
}

/// Runs `run` to its end on `conn`, batch after batch (resting between them), and records that it finished (or why it
/// failed: the users done so far stay signed out, and a new run may start at once).
pub async fn finish_run(
    conn: &mut AsyncPgConnection,
    mut run: OrgLogout,
    by: Requester<'_>,
    size: i64,
) -> diesel::QueryResult<OrgLogout> {
    let outcome = loop {
        let started = Instant::now();
        match next_batch(conn, &mut run, by, size).await {
            Ok(batch) if batch.users == 0 => break Ok(()),
            Ok(_) => rest_after(started.elapsed()).await,
            Err(e) => break Err(e),
        }
    };
    let error = outcome.as_ref().err().map(ToString::to_string);
    let done = finish(conn, &run, error.as_deref()).await?;
    outcome.map(|()| done)
}

/// Records the end of `run`; `error`: why it stopped early (logged; pages say only that the
/// database failed).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    run: &OrgLogout,
    error: Option<&str>,
) -> diesel::QueryResult<OrgLogout> {
    let failure = error.map(|_| "the database failed (the server's log says why)");
    let done = OrgLogout::finish(conn, run.id, failure).await?;
    match error {
        None => tracing::info!(org_id = %run.org_id, run = run.id, users = run.users_done,
            sessions = run.sessions_ended, tokens = run.tokens_revoked,
            "signed out everyone in an org"),
        Some(e) => tracing::error!(org_id = %run.org_id, run = run.id, users = run.users_done,
            error = %e, "signing out everyone in an org stopped"),
    }
    Ok(done)
}

/// Signs out everyone in `org` at once on `conn` (the command line: nothing spared): starts a
/// run, goes through every batch, and returns the finished run with its totals.
pub async fn sign_out_org(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    spared: Option<SessionId>,
    by: Requester<'_>,
) -> Result<OrgLogout, OrgLogoutError> {
    let run = start(conn, org, spared, by).await?;
    Ok(finish_run(conn, run, by, BATCH_USERS).await?)
}
