//! Live logout. Each instance keeps one dedicated connection that `LISTEN`s for revocations and
//! sign-ins, and an in-memory hub of the Server-Sent Event streams it serves: per session (the
//! user's tabs) and per org (admin dashboards). A notification reaches only the streams it
//! concerns, whichever instance committed the revocation.
//!
//! PostgreSQL delivers a notification only once its transaction commits, so a tab is told only
//! after the revocation is durable. If the connection drops, the listener reconnects with backoff,
//! listens again, then re-checks every session it holds a stream for, so a notification missed
//! while disconnected cannot leave a tab signed in.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use actix_web_lab::sse::{Data, Event};
use anyhow::Context as _;
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{
    config::DatabaseUrl,
    db::{
        Pool,
        ids::{OrgId, SessionId, UserId},
        models::SessionRecord,
    },
    device,
    revocation::{self, Notice},
};

/// The channel the `sessions_notify_sign_in` trigger announces new sessions on.
pub const SIGN_IN_CHANNEL: &str = "ual_todo_sign_ins";
/// Events buffered per stream; a logout needs one.
const STREAM_BUFFER: usize = 8;
/// How often the listening connection is checked with a query.
const PING_EVERY: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The listening connection's `application_name`, as `pg_stat_activity` shows it.
pub const LISTENER_NAME: &str = "ual-todo listener";

/// Which events a stream receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// A user's tab: `logout` when its session ends.
    User,
    /// An admin dashboard: `logout` for the admin's own session, plus the org's `revoked` and
    /// `signin` events.
    Admin,
}

/// A new signed-in session, as the trigger announces it.
#[derive(Clone, Debug, Deserialize)]
pub struct SignIn {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub at_ms: i64,
}

/// A stream's sender. Events are boxed: the channel allocates room for 32 of them up front, and
/// a boxed one is 8 bytes instead of 96, so an idle stream costs 3 KiB less.
type EventSender = mpsc::Sender<Box<Event>>;

/// Queues an event on a stream; a full or closed stream is skipped (it is going away).
fn send(tx: &EventSender, event: &Event) {
    let _ = tx.try_send(Box::new(event.clone()));
}

struct Entry {
    session: SessionId,
    user: UserId,
    org: OrgId,
    feed: Feed,
    tx: EventSender,
}

#[derive(Default)]
struct Streams {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    by_session: HashMap<SessionId, Vec<u64>>,
    by_user: HashMap<UserId, Vec<SessionId>>,
    admins: HashMap<OrgId, Vec<u64>>,
}

impl Streams {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(ids) = self.by_session.get_mut(&entry.session) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_session.remove(&entry.session);
                if let Some(sessions) = self.by_user.get_mut(&entry.user) {
                    sessions.retain(|s| *s != entry.session);
                    if sessions.is_empty() {
                        self.by_user.remove(&entry.user);
                    }
                }
            }
        }
        if entry.feed == Feed::Admin
            && let Some(ids) = self.admins.get_mut(&entry.org)
        {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.admins.remove(&entry.org);
            }
        }
        Some(entry)
    }

    /// Removes every stream of `session` and returns their senders.
    fn take_session(&mut self, session: SessionId) -> Vec<EventSender> {
        let ids = self.by_session.get(&session).cloned().unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| self.remove(id))
            .map(|e| e.tx)
            .collect()
    }
}

/// The streams an instance serves, and the state of its listening connection.
pub struct Hub {
    streams: Mutex<Streams>,
    /// Set at shutdown: streams are closed so browsers reconnect to another instance.
    closing: AtomicBool,
    listening: watch::Sender<bool>,
    reconnects: AtomicU64,
    keep_alive: Duration,
}

/// A stream's events; dropping it (the client went away) unregisters it.
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    rx: mpsc::Receiver<Box<Event>>,
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx).map(|event| event.map(|e| *e))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().remove(self.id);
    }
}

/// The `logout` event for a reason (`ual`, `admin`, `backchannel`, `self`, `revoked`).
fn logout_event(reason: &str) -> Event {
    Event::Data(Data::new(json!({ "reason": reason }).to_string()).event("logout"))
}

impl Hub {
    /// A hub whose streams send a keep-alive comment every `keep_alive`. A stream whose client
    /// went away is noticed, and unregistered, at its next write.
    pub fn new(keep_alive: Duration) -> Arc<Hub> {
        Arc::new(Hub {
            streams: Mutex::default(),
            closing: AtomicBool::new(false),
            listening: watch::Sender::new(false),
            reconnects: AtomicU64::new(0),
            keep_alive,
        })
    }

    /// How often streams send a keep-alive comment.
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a stream for a session.
    pub fn subscribe(
        self: &Arc<Self>,
        session: SessionId,
        user: UserId,
        org: OrgId,
        feed: Feed,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        if self.closing.load(Ordering::SeqCst) {
            // Shutting down: the stream ends at once and the browser retries elsewhere.
            return Subscription {
                hub: self.clone(),
                id: 0,
                rx,
            };
        }
        let mut guard = self.lock();
        let streams = &mut *guard;
        streams.next_id += 1;
        let id = streams.next_id;
        streams.entries.insert(
            id,
            Entry {
                session,
                user,
                org,
                feed,
                tx,
            },
        );
        let ids = streams.by_session.entry(session).or_default();
        if ids.is_empty() {
            streams.by_user.entry(user).or_default().push(session);
        }
        ids.push(id);
        if feed == Feed::Admin {
            streams.admins.entry(org).or_default().push(id);
        }
        drop(guard);
        Subscription {
            hub: self.clone(),
            id,
            rx,
        }
    }

    /// Delivers a revocation: `logout` to the ended sessions' streams (which then close),
    /// `revoked` to the org's dashboards.
    pub fn revoked(&self, notice: &Notice) {
        let logout = logout_event(notice.source.as_str());
        let revoked = Event::Data(
            Data::new(
                json!({
                    "user_id": notice.user_id,
                    "session_ids": notice.session_ids,
                    "source": notice.source,
                    "actor": notice.actor,
                    "sessions_ended": notice.sessions_ended,
                    "at_ms": notice.at_ms,
                })
                .to_string(),
            )
            .event("revoked"),
        );
        let mut streams = self.lock();
        let sessions = if notice.session_ids.is_empty() {
            let of_user = streams.by_user.get(&notice.user_id);
            of_user.cloned().unwrap_or_default()
        } else {
            notice.session_ids.clone()
        };
        for session in sessions {
            for tx in streams.take_session(session) {
                send(&tx, &logout);
            }
        }
        broadcast_to_admins(&streams, notice.org_id, &revoked);
    }

    /// Shows a new sign-in on the org's dashboards.
    pub fn signed_in(&self, sign_in: &SignIn) {
        let event = Event::Data(
            Data::new(
                json!({
                    "user_id": sign_in.user_id,
                    "session_id": sign_in.session_id,
                    "device": device::describe(sign_in.user_agent.as_deref()),
                    "ip": sign_in.ip,
                    "at_ms": sign_in.at_ms,
                })
                .to_string(),
            )
            .event("signin"),
        );
        broadcast_to_admins(&self.lock(), sign_in.org_id, &event);
    }

    /// Ends the streams of sessions found to be gone, and asks dashboards to reload (they may
    /// have missed events).
    fn resync(&self, gone: &[SessionId]) {
        let logout = logout_event("revoked");
        let stale = Event::Data(Data::new("{}").event("stale"));
        let mut streams = self.lock();
        for session in gone {
            for tx in streams.take_session(*session) {
                send(&tx, &logout);
            }
        }
        for ids in streams.admins.values() {
            for id in ids {
                if let Some(entry) = streams.entries.get(id) {
                    send(&entry.tx, &stale);
                }
            }
        }
    }

    /// Ends one session's streams at once (its session was found gone at subscription).
    pub fn end_session(&self, session: SessionId, reason: &str) {
        let logout = logout_event(reason);
        for tx in self.lock().take_session(session) {
            send(&tx, &logout);
        }
    }

    /// Closes every stream (without a logout: the sessions live on) and refuses new ones, so
    /// browsers reconnect to another instance while this one shuts down.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let mut streams = self.lock();
        let count = streams.entries.len();
        *streams = Streams::default();
        tracing::info!(streams = count, "closed live streams for shutdown");
    }

    /// Sessions this instance holds streams for.
    pub fn held_sessions(&self) -> Vec<SessionId> {
        self.lock().by_session.keys().copied().collect()
    }

    /// Open streams.
    pub fn stream_count(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the listening connection is up.
    pub fn is_listening(&self) -> bool {
        *self.listening.borrow()
    }

    /// Waits up to `timeout` for the listening connection to be up; whether it is.
    pub async fn wait_until_listening(&self, timeout: Duration) -> bool {
        let mut listening = self.listening.subscribe();
        tokio::time::timeout(timeout, listening.wait_for(|up| *up))
            .await
            .is_ok_and(|up| up.is_ok())
    }

    /// How many times the listening connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::SeqCst)
    }
}

fn broadcast_to_admins(streams: &Streams, org: OrgId, event: &Event) {
    for id in streams.admins.get(&org).into_iter().flatten() {
        if let Some(entry) = streams.entries.get(id) {
            send(&entry.tx, event);
        }
    }
}

/// Whether the session still exists (not revoked, not expired).
pub async fn session_is_live(pool: &Pool, session: SessionId) -> anyhow::Result<bool> {
    let mut conn = pool.get().await?;
    Ok(!SessionRecord::live_among(&mut conn, &[session])
        .await?
        .is_empty())
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
            "LISTEN {}; LISTEN {SIGN_IN_CHANNEL}",
            revocation::CHANNEL
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
    }
}

/// Ends the streams of held sessions that no longer exist.
async fn recheck(hub: &Hub, pool: &Pool) -> anyhow::Result<()> {
    let held = hub.held_sessions();
    let live: Vec<SessionId> = if held.is_empty() {
        Vec::new()
    } else {
        let mut conn = pool.get().await?;
        SessionRecord::live_among(&mut conn, &held).await?
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::RevocationSource;

    fn notice(org: OrgId, user: UserId, session: Option<SessionId>) -> Notice {
        Notice {
            revocation_id: 1,
            org_id: org,
            user_id: user,
            session_ids: session.into_iter().collect(),
            source: RevocationSource::Ual,
            actor: "test".into(),
            sessions_ended: 1,
            at_ms: 0,
        }
    }

    async fn next_event_name(sub: &mut Subscription) -> Option<String> {
        let event = tokio::time::timeout(Duration::from_millis(100), sub.next())
            .await
            .ok()??;
        match event {
            Event::Data(data) => Some(format!("{data:?}")),
            Event::Comment(_) => None,
        }
    }

    #[tokio::test]
    async fn a_user_revocation_reaches_only_that_users_streams_and_closes_them() {
        let hub = Hub::new(Duration::from_secs(15));
        let (org, alice, bob) = (OrgId::new(), UserId::new(), UserId::new());
        let (laptop, phone, bobs) = (SessionId::new(), SessionId::new(), SessionId::new());
        let mut tab1 = hub.subscribe(laptop, alice, org, Feed::User);
        let mut tab2 = hub.subscribe(laptop, alice, org, Feed::User);
        let mut on_phone = hub.subscribe(phone, alice, org, Feed::User);
        let mut bob_tab = hub.subscribe(bobs, bob, org, Feed::User);
        let mut dashboard = hub.subscribe(SessionId::new(), UserId::new(), org, Feed::Admin);

        hub.revoked(&notice(org, alice, None));

        for sub in [&mut tab1, &mut tab2, &mut on_phone] {
            assert!(next_event_name(sub).await.unwrap().contains("logout"));
            assert!(
                sub.next().await.is_none(),
                "the stream ends after the logout"
            );
        }
        assert!(next_event_name(&mut bob_tab).await.is_none());
        assert!(
            next_event_name(&mut dashboard)
                .await
                .unwrap()
                .contains("revoked")
        );
        assert_eq!(hub.stream_count(), 2, "bob's tab and the dashboard remain");
    }

    #[tokio::test]
    async fn a_session_revocation_leaves_the_users_other_sessions() {
        let hub = Hub::new(Duration::from_secs(15));
        let (org, alice) = (OrgId::new(), UserId::new());
        let (laptop, phone) = (SessionId::new(), SessionId::new());
        let mut on_laptop = hub.subscribe(laptop, alice, org, Feed::User);
        let mut on_phone = hub.subscribe(phone, alice, org, Feed::User);

        hub.revoked(&notice(org, alice, Some(laptop)));

        assert!(
            next_event_name(&mut on_laptop)
                .await
                .unwrap()
                .contains("logout")
        );
        assert!(next_event_name(&mut on_phone).await.is_none());
        assert_eq!(hub.held_sessions(), vec![phone]);
    }

    #[tokio::test]
    async fn dropped_streams_unregister_and_other_orgs_hear_nothing() {
        let hub = Hub::new(Duration::from_secs(15));
        let (acme, globex, alice) = (OrgId::new(), OrgId::new(), UserId::new());
        let tab = hub.subscribe(SessionId::new(), alice, acme, Feed::User);
        let mut globex_admin = hub.subscribe(SessionId::new(), UserId::new(), globex, Feed::Admin);
        drop(tab);
        assert_eq!(hub.stream_count(), 1);

        hub.revoked(&notice(acme, alice, None));

        assert!(next_event_name(&mut globex_admin).await.is_none());
        assert!(!hub.lock().by_user.contains_key(&alice));
    }
}
