//! The listening connection of an instance: `LISTEN`s for revocations, sign-ins and role
//! changes and hands them to the [`Hub`]; reconnects with backoff, then re-checks what it may
//! have missed.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{Hub, SIGN_IN_CHANNEL, SignIn};
use crate::{
    config::DatabaseUrl,
    db::{
        Pool,
        ids::{OrgId, SessionId, UserId},
        models::{SessionRecord, User},
    },
    revocation::{self, Notice, RoleNotice},
};

/// How often the listening connection is checked with a query.
const PING_EVERY: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The listening connection's `application_name`, as `pg_stat_activity` shows it.
pub const LISTENER_NAME: &str = "ual-todo listener";

/// Whether the session still exists (not revoked, not expired).
pub async fn session_is_live(pool: &Pool, session: SessionId) -> anyhow::Result<bool> {
    let mut conn = pool.get().await?;
    Ok(!SessionRecord::live_among(&mut conn, &[session])
        .await?
        .is_empty())
}

/// Whether `user` is (still) an admin of `org`.
pub async fn is_admin(pool: &Pool, org: OrgId, user: UserId) -> anyhow::Result<bool> {
    let mut conn = pool.get().await?;
    Ok(User::find_in_org(&mut conn, org, user)
        .await?
        .is_some_and(|u| u.is_admin))
}

/// The listening loop of an instance: runs forever, reconnecting with backoff.
pub async fn listen(hub: Arc<Hub>, url: DatabaseUrl, pool: Pool) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = listen_once(&hub, &url, &pool, &mut backoff).await;
        hub.listening.send_replace(false);
        match result {
            Ok(()) => tracing::warn!("the listening connection closed; reconnecting"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "the listening connection failed; reconnecting"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        hub.reconnects.fetch_add(1, Ordering::SeqCst);
    }
}

async fn listen_once(
    hub: &Hub,
    url: &DatabaseUrl,
    pool: &Pool,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let mut config: tokio_postgres::Config = url.expose().parse().context("a bad database URL")?;
    config
        .application_name(LISTENER_NAME)
        .connect_timeout(PING_TIMEOUT);
    let (client, mut connection) = config.connect(NoTls).await.context("cannot connect")?;
    let (tx, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    let _abort_driver = AbortOnDrop(driver.abort_handle());

    client
        .batch_execute(&format!(
            "LISTEN {}; LISTEN {SIGN_IN_CHANNEL}; LISTEN {}",
            revocation::CHANNEL,
            revocation::ROLE_CHANNEL
        ))
        .await
        .context("cannot LISTEN")?;
    hub.listening.send_replace(true);
    *backoff = Duration::from_millis(100);
    tracing::info!("listening for revocations");
    // Anything revoked while not listening is found here; anything after is notified.
    recheck(hub, pool).await?;

    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            notification = notifications.recv() => match notification {
                Some(n) => handle(hub, n.channel(), n.payload()),
                None => return Ok(()),
            },
            _ = ping.tick() => {
                tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1"))
                    .await
                    .context("the listening connection stopped answering")?
                    .context("the listening connection failed")?;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn handle(hub: &Hub, channel: &str, payload: &str) {
    if channel == revocation::CHANNEL {
        match serde_json::from_str::<Notice>(payload) {
            Ok(notice) => hub.revoked(&notice),
            Err(e) => tracing::warn!(error = %e, "unreadable revocation notice"),
        }
    } else if channel == SIGN_IN_CHANNEL {
        match serde_json::from_str::<SignIn>(payload) {
            Ok(sign_in) => hub.signed_in(&sign_in),
            Err(e) => tracing::warn!(error = %e, "unreadable sign-in notice"),
        }
    } else if channel == revocation::ROLE_CHANNEL {
        match serde_json::from_str::<RoleNotice>(payload) {
            Ok(role) if !role.is_admin => hub.lost_admin(role.user_id),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable role notice"),
        }
    }
}

/// Ends the streams of held sessions that no longer exist, and the org feeds of users who are no
/// longer admins.
async fn recheck(hub: &Hub, pool: &Pool) -> anyhow::Result<()> {
    let held = hub.held_sessions();
    let feeds = hub.admin_users();
    let (live, admins) = if held.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let mut conn = pool.get().await?;
        (
            SessionRecord::live_among(&mut conn, &held).await?,
            User::admins_among(&mut conn, &feeds).await?,
        )
    };
    for user in feeds.into_iter().filter(|u| !admins.contains(u)) {
        hub.lost_admin(user);
    }
    let gone: Vec<SessionId> = held.into_iter().filter(|s| !live.contains(s)).collect();
    if !gone.is_empty() {
        tracing::info!(
            sessions = gone.len(),
            "ended streams of sessions revoked while not listening"
        );
    }
    hub.resync(&gone);
    Ok(())
}
