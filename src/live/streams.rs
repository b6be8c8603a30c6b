//! The index of an instance's open streams: by session (a user's tabs), by user, and by org
//! (admin dashboards), so a notice reaches only the streams it concerns.

use std::collections::HashMap;

use actix_web_lab::sse::Event;

use crate::db::ids::{OrgId, SessionId, UserId};

/// Which events a stream receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// A user's tab: `logout` when its session ends.
    User,
    /// An admin dashboard: `logout` for the admin's own session, plus the org's `revoked` and
    /// `signin` events.
    Admin,
}

/// A stream's sender: dropping it ends the stream.
pub(super) type EventSender = super::mailbox::Sender;

/// Queues an event on a stream; a full or closed stream is skipped (it is going away).
pub(super) fn send(tx: &EventSender, event: &Event) {
    tx.post(event);
}

/// One open stream.
pub(super) struct Entry {
    pub(super) session: SessionId,
    pub(super) user: UserId,
    pub(super) org: OrgId,
    pub(super) feed: Feed,
    pub(super) tx: EventSender,
}

/// The open streams, indexed by session, user and (for dashboards) org.
#[derive(Default)]
pub(super) struct Streams {
    pub(super) next_id: u64,
    pub(super) entries: HashMap<u64, Entry>,
    pub(super) by_session: HashMap<SessionId, Vec<u64>>,
    pub(super) by_user: HashMap<UserId, Vec<SessionId>>,
    pub(super) admins: HashMap<OrgId, Vec<u64>>,
}

impl Streams {
    pub(super) fn remove(&mut self, id: u64) -> Option<Entry> {
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
    pub(super) fn take_session(&mut self, session: SessionId) -> Vec<EventSender> {
        let ids = self.by_session.get(&session).cloned().unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| self.remove(id))
            .map(|e| e.tx)
            .collect()
    }
}

/// Sends `event` to every page stream of `user`'s sessions (but `except`'s), keeping them open.
/// Dashboards' feeds are not told: they hear of the org's changes through their own events.
pub(super) fn send_to_user(
    streams: &Streams,
    user: UserId,
    except: Option<SessionId>,
    event: &Event,
) {
    let sessions = streams.by_user.get(&user).into_iter().flatten();
    for session in sessions.filter(|s| Some(**s) != except) {
        for id in streams.by_session.get(session).into_iter().flatten() {
            if let Some(entry) = streams.entries.get(id).filter(|e| e.feed == Feed::User) {
                send(&entry.tx, event);
            }
        }
    }
}

/// Sends `event` to every dashboard of `org`.
pub(super) fn broadcast_to_admins(streams: &Streams, org: OrgId, event: &Event) {
    for id in streams.admins.get(&org).into_iter().flatten() {
        if let Some(entry) = streams.entries.get(id) {
            send(&entry.tx, event);
        }
    }
}
