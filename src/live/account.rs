//! What a user's own tabs hear of their sessions besides a logout: a sign-in elsewhere (named,
//! and flagged when the device is new) and a session ending elsewhere. The sessions page
//! refreshes its list on either; other pages show the new-device notice.

use actix_web_lab::sse::{Data, Event};
use serde_json::json;

use crate::{db::ids::SessionId, user_agent};

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
