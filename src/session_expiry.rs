//! Sessions bound by their IdP (the ID token's `session_expiry`) end when it says, within
//! [`EVERY`]: each ends through the one revocation path, so open tabs are told live ("Your
//! organisation's sign-in has expired") rather than at their next request. Every instance runs
//! it; a session two instances both find ends once (the second finds nothing to delete).

use std::time::Duration;

use time::OffsetDateTime;

use crate::{
    db::{
        Pool,
        models::{RevocationSource, SessionRecord},
    },
    revocation::{self, Requester, Sessions},
};

/// How often ended IdP sessions are looked for.
pub const EVERY: Duration = Duration::from_secs(2);
/// Sessions ended per look.
const BATCH: i64 = 500;

const BY: Requester<'static> = Requester {
    source: RevocationSource::IdpExpiry,
    actor: "session_expiry",
    request_id: None,
    single_use: None,
};

/// Ends ended IdP sessions every `every`, forever; spawned once per instance.
pub async fn run(pool: Pool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = end_expired(&pool).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "ending expired IdP sessions failed; will retry"
            );
        }
    }
}

/// Ends every session whose IdP session has ended; returns how many.
pub async fn end_expired(pool: &Pool) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    let mut ended = 0;
    loop {
        let due = SessionRecord::idp_ended(&mut conn, OffsetDateTime::now_utc(), BATCH).await?;
        for (org, session) in &due {
            let Some(org) = org else { continue };
            let outcomes =
                revocation::revoke_sessions(&mut conn, *org, Sessions::One(*session), BY).await?;
            ended += outcomes.iter().map(|o| o.sessions_ended).sum::<usize>();
        }
        if due.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    if ended > 0 {
        tracing::info!(sessions = ended, "ended sessions whose IdP session expired");
    }
    Ok(ended)
}
