//! What a SET's one event asks for, and whom it names. The subject is the SET's `sub_id` or, as
//! Okta and older CAEP drafts send it, a `subject` inside the event: a plain identifier (`email`,
//! `iss_sub`, `opaque`, `aliases`), or `complex` with a `user` and a `session` (Okta's
//! `{"user": {…}}` has no `format`, and is read as complex).

use serde_json::{Map, Value};

use crate::routes::global_token_revocation::subject::{self, Subject};

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
const SSF: &str = "https://schemas.openid.net/secevent/ssf/event-type/";

/// The events the app acts on; any other is accepted and ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// CAEP: end the IdP session's sessions, or every session of the user.
    SessionRevoked,
    /// CAEP: end every session and personal access token.
    CredentialChange,
    /// RISC: suspend.
    AccountDisabled,
    /// RISC: reactivate.
    AccountEnabled,
    /// RISC: delete.
    AccountPurged,
    /// RISC: the user's email is now `new_value`.
    IdentifierChanged {
        new_value: Option<String>,
    },
    /// SSF: the stream works; `state` as the app asked for it.
    Verification {
        state: Option<String>,
    },
    /// SSF: the transmitter changed the stream's status.
    StreamUpdated {
        status: Option<String>,
    },
    Other,
}

impl Signal {
    /// The signal an event type and its members ask for.
    pub fn of(event_type: &str, event: &Map<String, Value>) -> Signal {
        let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        let name = event_type
            .strip_prefix(CAEP)
            .map(|n| ("caep", n))
            .or_else(|| event_type.strip_prefix(RISC).map(|n| ("risc", n)))
            .or_else(|| event_type.strip_prefix(SSF).map(|n| ("ssf", n)));
        match name {
            Some(("caep", "session-revoked")) => Signal::SessionRevoked,
            Some(("caep", "credential-change")) => Signal::CredentialChange,
            Some(("risc", "account-disabled")) => Signal::AccountDisabled,
            Some(("risc", "account-enabled")) => Signal::AccountEnabled,
            Some(("risc", "account-purged")) => Signal::AccountPurged,
            Some(("risc", "identifier-changed")) => Signal::IdentifierChanged {
                new_value: text("new-value").or_else(|| text("new_value")),
            },
            // Transmitters from before SSF 1.0 send RISC's verification event.
            Some(("ssf" | "risc", "verification")) => Signal::Verification {
                state: text("state"),
            },
            Some(("ssf", "stream-updated")) => Signal::StreamUpdated {
                status: text("status"),
            },
            _ => Signal::Other,
        }
    }

    /// A short name for logs and metrics (a closed set).
    pub fn label(&self) -> &'static str {
        match self {
            Self::SessionRevoked => "session-revoked",
            Self::CredentialChange => "credential-change",
            Self::AccountDisabled => "account-disabled",
            Self::AccountEnabled => "account-enabled",
            Self::AccountPurged => "account-purged",
            Self::IdentifierChanged { .. } => "identifier-changed",
            Self::Verification { .. } => "verification",
            Self::StreamUpdated { .. } => "stream-updated",
            Self::Other => "other",
        }
    }

    /// Whether the signal concerns a user (and so needs a subject).
    pub fn names_a_user(&self) -> bool {
        !matches!(
            self,
            Self::Verification { .. } | Self::StreamUpdated { .. } | Self::Other
        )
    }
}

/// Whom an event names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub user: Option<Subject>,
    /// The IdP session (the ID token's `sid`), for a session subject.
    pub session: Option<String>,
    /// The user's email, when the subject names it (what `identifier-changed` changes).
    pub email: Option<String>,
}

/// The subject of an event: the SET's `sub_id`, else the event's `subject`.
pub fn target(
    sub_id: Option<&Map<String, Value>>,
    event: &Map<String, Value>,
) -> Result<Target, String> {
    let subject = match (sub_id, event.get("subject")) {
        (Some(sub_id), _) => sub_id,
        (None, Some(Value::Object(subject))) => subject,
        (None, Some(_)) => return Err("the event's subject must be an object".into()),
        (None, None) => return Err("the SET names no subject (sub_id)".into()),
    };
    let complex = subject.get("format").and_then(Value::as_str) == Some("complex")
        || (!subject.contains_key("format")
            && (subject.contains_key("user") || subject.contains_key("session")));
    if !complex {
        return identifier(subject).map(|(user, email)| Target {
            user: Some(user),
            session: None,
            email,
        });
    }
    let member = |name: &str| match subject.get(name) {
        None => Ok(None),
        Some(Value::Object(member)) => Ok(Some(member)),
        Some(_) => Err(format!("the subject's {name} must be an object")),
    };
    let (user, email) = match member("user")? {
        Some(user) => {
            let (user, email) = identifier(user)?;
            (Some(user), email)
        }
        None => (None, None),
    };
    let session = match member("session")? {
        Some(session) => Some(session_id(session)?),
        None => None,
    };
    if user.is_none() && session.is_none() {
        return Err("a complex subject needs a user or a session".into());
    }
    Ok(Target {
        user,
        session,
        email,
    })
}

fn identifier(id: &Map<String, Value>) -> Result<(Subject, Option<String>), String> {
    let user = subject::from_identifier(id).map_err(|e| e.to_string())?;
    let email = match &user {
        Subject::Email(email) => Some(email.clone()),
        _ => None,
    };
    Ok((user, email))
}

/// A session subject: `opaque` (its `id`) as CAEP's examples send it.
fn session_id(session: &Map<String, Value>) -> Result<String, String> {
    match (
        session.get("format").and_then(Value::as_str),
        session.get("id"),
    ) {
        (Some("opaque"), Some(Value::String(id)))
            if !id.is_empty() && id.len() <= 1024 && !id.chars().any(char::is_control) =>
        {
            Ok(id.clone())
        }
        (Some("opaque"), _) => Err("the session subject's id must be a non-empty string".into()),
        _ => Err("a session subject must have the opaque format".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn okta_session_revoked_names_the_user_inside_the_event() {
        let event = map(json!({"subject": {"user": {"format": "email", "email": "a@b.test"}}}));
        let target = target(None, &event).unwrap();
        assert_eq!(target.user, Some(Subject::Email("a@b.test".into())));
        assert_eq!(target.session, None);
    }

    #[test]
    fn okta_credential_change_has_a_flat_subject() {
        let event = map(json!({"subject": {"format": "email", "email": "a@b.test"}}));
        assert_eq!(
            target(None, &event).unwrap().email.as_deref(),
            Some("a@b.test")
        );
    }

    #[test]
    fn a_complex_sub_id_names_a_session_and_wins_over_the_event_subject() {
        let sub_id = map(json!({"format": "complex",
            "session": {"format": "opaque", "id": "sid-1"},
            "user": {"format": "iss_sub", "iss": "https://idp", "sub": "u1"}}));
        let event = map(json!({"subject": {"format": "email", "email": "x@y.test"}}));
        let target = target(Some(&sub_id), &event).unwrap();
        assert_eq!(target.session.as_deref(), Some("sid-1"));
        assert!(matches!(target.user, Some(Subject::IssSub { .. })));
    }

    #[test]
    fn malformed_subjects_say_what_is_wrong() {
        let none = Map::new();
        assert!(target(None, &none).unwrap_err().contains("no subject"));
        for (subject, words) in [
            (json!("a@b"), "must be an object"),
            (json!({"format": "complex"}), "needs a user or a session"),
            (
                json!({"format": "complex", "user": 1}),
                "user must be an object",
            ),
            (
                json!({"session": {"format": "email", "email": "x"}}),
                "opaque format",
            ),
            (
                json!({"session": {"format": "opaque", "id": ""}}),
                "non-empty",
            ),
            (
                json!({"format": "phone_number", "phone_number": "+1"}),
                "unsupported subject format",
            ),
        ] {
            let event = map(json!({ "subject": subject }));
            let error = target(None, &event).unwrap_err();
            assert!(error.contains(words), "{words}: {error}");
        }
    }

    #[test]
    fn event_types_map_to_signals() {
        let empty = Map::new();
        let of = |t: &str| Signal::of(t, &empty).label();
        assert_eq!(
            of("https://schemas.openid.net/secevent/caep/event-type/session-revoked"),
            "session-revoked"
        );
        assert_eq!(
            of("https://schemas.openid.net/secevent/risc/event-type/account-purged"),
            "account-purged"
        );
        assert_eq!(
            of("https://schemas.openid.net/secevent/ssf/event-type/verification"),
            "verification"
        );
        assert_eq!(
            of("https://schemas.openid.net/secevent/caep/event-type/token-claims-change"),
            "other"
        );
        let changed = map(json!({"new-value": "new@b.test"}));
        assert_eq!(
            Signal::of(
                "https://schemas.openid.net/secevent/risc/event-type/identifier-changed",
                &changed
            ),
            Signal::IdentifierChanged {
                new_value: Some("new@b.test".into())
            }
        );
    }
}
