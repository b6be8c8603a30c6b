//! The events streams carry, in the server's words: `logout` (and why), and what a user's own
//! tabs hear of their sessions besides a logout: a sign-in elsewhere (named, and flagged when
//! the device is new) and a session ending elsewhere. The sessions page refreshes its list on
//! either; other pages show the new-device notice.

use actix_web_lab::sse::{Data, Event};
use serde_json::json;

use crate::{
    db::{
        ids::{AccountState, SessionId},
        models::Action,
    },
    revocation::Notice,
    user_agent,
};

/// A notice's time as pages show it (pages format times one way, on the server).
pub(super) fn time_text(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .map(|at| crate::page::format_time(&at))
        .unwrap_or_default()
}

/// The row's "Suspended by … · time" for a state change, as the user's `state_changed_by` has it.
pub(super) fn state_change_text(state: AccountState, notice: &Notice) -> String {
    let by = format!("{} ({})", notice.source.label(), notice.actor);
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(notice.at_ms) * 1_000_000)
        .map(|at| crate::page::state_change(state, &by, &at))
        .unwrap_or_default()
}

/// The `logout` event for a reason (`ual`, `admin`, `backchannel`, `self`, `revoked`).
pub(super) fn logout_event(reason: &str) -> Event {
    let message = crate::page::sign_out_reason(reason);
    Event::Data(
        Data::new(json!({ "reason": reason, "message": message }).to_string()).event("logout"),
    )
}

/// Why a notice's sessions ended, as their tabs say it: suspended, else the notice's own
/// reason (when the server has words for it), else its source.
pub(super) fn logout_reason(notice: &Notice) -> &str {
    match notice.action {
        Action::Suspend | Action::Delete => "suspended",
        _ => notice
            .reason
            .as_deref()
            .filter(|r| crate::page::sign_out_reason(r).is_some())
            .unwrap_or(notice.source.as_str()),
    }
}

/// Where the user sees and ends their sessions.
const SESSIONS_PAGE: &str = "/account/sessions";

/// A `sessions` event: the user's sessions changed (`kind`: `signin`, `ended`).
pub(super) fn sessions_changed(kind: &str, extra: Option<serde_json::Value>) -> Event {
    let mut data = json!({ "kind": kind, "page": SESSIONS_PAGE });
    if let (Some(map), Some(serde_json::Value::Object(more))) = (data.as_object_mut(), extra) {
        map.extend(more);
    }
    Event::Data(Data::new(data.to_string()).event("sessions"))
}

/// The `sessions` event of a new sign-in, with the notice other tabs show when the device is
/// new ("New sign-in from Firefox on Windows").
pub(super) fn signed_in(session: SessionId, user_agent: Option<&str>, new_device: bool) -> Event {
    let device = user_agent::describe(user_agent);
    let message = new_device.then(|| format!("New sign-in from {device}"));
    sessions_changed(
        "signin",
        Some(json!({
            "session_id": session,
            "new_device": new_device,
            "message": message,
        })),
    )
}
