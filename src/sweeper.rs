//! Periodic clean-up: expired sessions, JWT ids past their expiry, unfinished SSO sign-ins
//! (anonymous starts must not accumulate), expired SCIM access tokens, and deleted users once
//! their retention has passed (with their todos). Every instance runs it; the deletes are idempotent,
//! so instances do not need to coordinate.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{
    db::{
        Pool,
        models::{OidcLogin, ScimToken, SeenJti, SessionRecord},
    },
    revocation::lifecycle,
};

/// Rows deleted per statement, so a large backlog never holds long locks.
const BATCH: i64 = 1000;

/// What one sweep deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: usize,
    pub jtis: usize,
    pub sso_logins: usize,
    pub scim_tokens: usize,
    pub deleted_users: usize,
}

/// Sweeps every `every`, forever, purging users deleted longer than `retention` ago; spawned
/// once per instance.
pub async fn run(pool: Pool, every: Duration, retention: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = sweep_once(&pool, retention).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "sweeping expired rows failed; will retry"
            );
        }
    }
}

/// One sweep.
pub async fn sweep_once(pool: &Pool, retention: Duration) -> anyhow::Result<Swept> {
    let mut conn = pool.get().await?;
    let mut swept = Swept::default();
    loop {
        let deleted =
            SessionRecord::delete_expired(&mut conn, OffsetDateTime::now_utc(), BATCH).await?;
        swept.sessions += deleted;
        if deleted < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    swept.jtis = SeenJti::delete_expired(&mut conn, OffsetDateTime::now_utc()).await?;
    swept.sso_logins = OidcLogin::delete_expired(&mut conn, OffsetDateTime::now_utc()).await?;
    swept.scim_tokens = ScimToken::sweep_expired(&mut conn, OffsetDateTime::now_utc()).await?;
    let retention = time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
    swept.deleted_users = lifecycle::purge_deleted(&mut conn, retention).await?;
    if swept != Swept::default() {
        tracing::info!(
            sessions = swept.sessions,
            jtis = swept.jtis,
            sso_logins = swept.sso_logins,
            scim_tokens = swept.scim_tokens,
            deleted_users = swept.deleted_users,
            "swept expired rows"
        );
    }
    Ok(swept)
}
