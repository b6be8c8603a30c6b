//! Periodic clean-up: expired sessions, JWT ids past their expiry, unfinished SSO sign-ins
//! (anonymous starts must not accumulate), expired SCIM access tokens from `POST /oauth/token`.
//! Every instance runs it; the deletes are idempotent, so instances need not coordinate.

use std::time::Duration;

use time::OffsetDateTime;

use crate::db::{
    Pool,
    models::{OidcLogin, ScimToken, SeenJti, SessionRecord},
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
}

/// Sweeps every `every`, forever; spawned once per instance.
pub async fn run(pool: Pool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = sweep_once(&pool).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "sweeping expired rows failed; will retry"
            );
        }
    }
}

/// One sweep.
pub async fn sweep_once(pool: &Pool) -> anyhow::Result<Swept> {
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
    if swept != Swept::default() {
        tracing::info!(
            sessions = swept.sessions,
            jtis = swept.jtis,
            sso_logins = swept.sso_logins,
            scim_tokens = swept.scim_tokens,
            "swept expired rows"
        );
    }
    Ok(swept)
}
