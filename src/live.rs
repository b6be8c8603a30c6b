//! Live logout. Each instance keeps one dedicated connection that `LISTEN`s for revocations,
//! sign-ins and admin role changes ([`listener`]), and an in-memory hub of the Server-Sent Event
//! streams it serves: per session (the user's tabs, at most [`MAX_STREAMS_PER_SESSION`]) and per
//! org (admin dashboards, closed when their user stops being an admin). A notification reaches
//! only the streams it concerns, whichever instance committed the change.
//!
//! PostgreSQL delivers a notification only once its transaction commits, so a tab is told only
//! after the revocation is durable. If the connection drops, the listener reconnects with backoff,
//! listens again, then re-checks every session it holds a stream for, so a notification missed
//! while disconnected cannot leave a tab signed in.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use actix_web_lab::sse::{Data, Event};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::{
    db::{
        ids::{AccountState, OrgId, SessionId, UserId},
        models::Action,
    },
    revocation::Notice,
    user_agent,
};

mod events;
mod listener;
mod mailbox;
mod streams;

use events::{logout_event, state_change_text, time_text};
pub use listener::{LISTENER_NAME, is_admin, listen, session_is_live};
pub use streams::Feed;
use streams::{Entry, Streams, broadcast_to_admins, send, send_to_user};

/// The channel the `sessions_notify_sign_in` trigger announces new sessions on.
pub const SIGN_IN_CHANNEL: &str = "ual_todo_sign_ins";
/// Streams sent their keep-alive comment per hold of the hub's lock.
const KEEP_ALIVE_BATCH: usize = 1_000;
/// Open streams per session (a tab each); the oldest closes when another opens, so one cookie
/// cannot pin an unbounded number of streams in memory.
pub const MAX_STREAMS_PER_SESSION: usize = 20;

/// A new signed-in session, as the trigger announces it.
#[derive(Clone, Debug, Deserialize)]
pub struct SignIn {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// From a device the user had not signed in from before (absent from older instances).
    #[serde(default)]
    pub new_device: bool,
    pub at_ms: i64,
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
    rx: mailbox::Receiver,
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().remove(self.id);
    }
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

    /// Sends a keep-alive comment to every open stream every `keep_alive`, until the hub is
    /// dropped: proxies keep the idle connection, and a stream whose client left fails its
    /// write and is unregistered. One timer for the instance, not one per stream (a timer is
    /// about 0.2 KiB of each idle stream).
    pub async fn keep_streams_alive(hub: std::sync::Weak<Hub>) {
        let Some(every) = hub.upgrade().map(|hub| hub.keep_alive) else {
            return;
        };
        let comment = Event::Comment("keep-alive".into());
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(hub) = hub.upgrade() else { return };
            // In batches, so a revocation's fan-out never waits behind every open stream.
            let ids: Vec<u64> = hub.lock().entries.keys().copied().collect();
            for batch in ids.chunks(KEEP_ALIVE_BATCH) {
                let streams = hub.lock();
                for entry in batch.iter().filter_map(|id| streams.entries.get(id)) {
                    send(&entry.tx, &comment);
                }
            }
        }
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
        let (tx, rx) = mailbox::mailbox();
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
        // Ids grow, so the session's first is its oldest; dropping its sender ends that stream.
        let oldest = (ids.len() > MAX_STREAMS_PER_SESSION).then(|| ids[0]);
        if feed == Feed::Admin {
            streams.admins.entry(org).or_default().push(id);
        }
        let closed = oldest.and_then(|oldest| streams.remove(oldest));
        drop(guard);
        drop(closed);
        Subscription {
            hub: self.clone(),
            id,
            rx,
        }
    }

    /// Delivers a revocation or state change: `logout` to the ended sessions' streams (which
    /// then close), `revoked` to the org's dashboards (with the action, so they show the state).
    pub fn revoked(&self, notice: &Notice) {
        let logout = logout_event(events::logout_reason(notice));
        let state = match notice.action {
            Action::Suspend => Some(AccountState::Suspended),
            Action::Reactivate => Some(AccountState::Active),
            Action::Delete => Some(AccountState::Deleted),
            _ => None,
        };
        let revoked = Event::Data(
            Data::new(
                json!({
                    "user_id": notice.user_id,
                    "session_ids": notice.session_ids,
                    "spared_session_id": notice.spared_session_id,
                    "source": notice.source,
                    "label": notice.source.label(),
                    "actor": notice.actor,
                    "sessions_ended": notice.sessions_ended,
                    "action": notice.action,
                    // The feed's words, and whether the user's sessions ended with it.
                    "phrase": notice.action.phrase(),
                    "ends_sessions": notice.action.ends_sessions(),
                    // A state change as the dashboard's row shows it.
                    "state": state,
                    "state_label": state.map(crate::page::state_label),
                    "state_changed": state.map(|s| state_change_text(s, notice)),
                    "at_ms": notice.at_ms,
                    "at": time_text(notice.at_ms),
                })
                .to_string(),
            )
            .event("revoked"),
        );
        let mut streams = self.lock();
        if notice.action == Action::Reauth {
            let message = crate::page::sign_out_reason("reauth");
            let data = json!({ "reason": "reauth", "message": message }).to_string();
            send_to_user(
                &streams,
                notice.user_id,
                None,
                &Event::Data(Data::new(data).event("reauth")),
            );
        }
        let sessions = if !notice.action.ends_sessions() {
            Vec::new()
        } else if notice.session_ids.is_empty() {
            let of_user = streams.by_user.get(&notice.user_id).into_iter().flatten();
            let spared = notice.spared_session_id;
            of_user.copied().filter(|s| Some(*s) != spared).collect()
        } else {
            notice.session_ids.clone()
        };
        let ended_some = !sessions.is_empty();
        for session in sessions {
            for tx in streams.take_session(session) {
                send(&tx, &logout);
            }
        }
        if ended_some {
            // The user's sessions that go on list their sessions: one fewer now.
            let event = events::sessions_changed("ended", None);
            send_to_user(&streams, notice.user_id, None, &event);
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
                    "device": user_agent::describe(sign_in.user_agent.as_deref()),
                    "ip": sign_in.ip,
                    "at_ms": sign_in.at_ms,
                    "at": time_text(sign_in.at_ms),
                })
                .to_string(),
            )
            .event("signin"),
        );
        let streams = self.lock();
        broadcast_to_admins(&streams, sign_in.org_id, &event);
        let event = events::signed_in(
            sign_in.session_id,
            sign_in.user_agent.as_deref(),
            sign_in.new_device,
        );
        // Not to the session that signed in: it knows.
        send_to_user(&streams, sign_in.user_id, Some(sign_in.session_id), &event);
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

    /// Ends the org feeds of `user`, who is not (or no longer) an admin: a `demoted` event, then
    /// the stream closes. The user's own tabs keep their streams: the session lives on.
    pub fn lost_admin(&self, user: UserId) {
        let demoted = Event::Data(Data::new("{}").event("demoted"));
        let mut streams = self.lock();
        let sessions = streams.by_user.get(&user).cloned().unwrap_or_default();
        let feeds: Vec<u64> = sessions
            .iter()
            .filter_map(|s| streams.by_session.get(s))
            .flatten()
            .copied()
            .filter(|id| {
                streams
                    .entries
                    .get(id)
                    .is_some_and(|e| e.feed == Feed::Admin)
            })
            .collect();
        let closed: Vec<Entry> = feeds
            .into_iter()
            .filter_map(|id| streams.remove(id))
            .collect();
        drop(streams);
        for entry in &closed {
            send(&entry.tx, &demoted);
        }
        if !closed.is_empty() {
            tracing::info!(user_id = %user, streams = closed.len(), "closed the org feeds of a user who is not an admin");
        }
    }

    /// Users this instance serves an org feed to.
    fn admin_users(&self) -> Vec<UserId> {
        let streams = self.lock();
        let mut users: Vec<UserId> = streams
            .admins
            .values()
            .flatten()
            .filter_map(|id| streams.entries.get(id).map(|e| e.user))
            .collect();
        users.sort_unstable_by_key(|u| u.0);
        users.dedup();
        users
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

#[cfg(test)]
mod tests;
