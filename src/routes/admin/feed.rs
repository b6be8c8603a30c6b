//! An audit row as the dashboard's feed and the audit log show it.

use serde_json::Value;

use crate::{
    db::models::{Action, Revocation, RevocationSource},
    page::format_time,
};

/// Longest before → after text shown; a SCIM update may carry long attributes.
const MAX_CHANGE_CHARS: usize = 300;

/// One audit row in the feed or the log.
pub struct FeedRow {
    pub at: String,
    pub email: String,
    /// What happened, as the log's column names it ("Suspended", "Break-glass on").
    pub action: String,
    /// The same, in the feed's sentence ("suspended").
    pub phrase: &'static str,
    /// Whether the action ends sessions (then the count of those it ended is worth showing).
    pub ends_sessions: bool,
    pub source: String,
    pub actor: String,
    pub sessions_ended: i32,
    /// Before → after, from the row's detail ("state: active → suspended").
    pub change: String,
}

impl FeedRow {
    pub fn new(revocation: &Revocation, email: Option<String>) -> FeedRow {
        let action = revocation.action;
        FeedRow {
            at: format_time(&revocation.created_at),
            email: email.unwrap_or_else(|| "(deleted user)".into()),
            action: label(action, revocation.detail.as_ref()).to_owned(),
            phrase: action.phrase(),
            ends_sessions: action.ends_sessions(),
            source: RevocationSource::parse(&revocation.source)
                .map_or(revocation.source.clone(), |s| s.label().to_owned()),
            actor: revocation.actor.clone(),
            sessions_ended: revocation.sessions_ended,
            change: revocation.detail.as_ref().map(change).unwrap_or_default(),
        }
    }
}

/// The action's name; break-glass says which way it went.
fn label(action: Action, detail: Option<&Value>) -> &'static str {
    let after = detail.and_then(|d| d.pointer("/after/break_glass"));
    match (action, after.and_then(Value::as_bool)) {
        (Action::BreakGlass, Some(true)) => "Break-glass on",
        (Action::BreakGlass, Some(false)) => "Break-glass off",
        _ => action.label(),
    }
}

/// `{"before": {k: a}, "after": {k: b}}` as "k: a → b; …", keys in order, cut to
/// [`MAX_CHANGE_CHARS`]. Anything else reads as nothing.
fn change(detail: &Value) -> String {
    let side = |name| detail.get(name).and_then(Value::as_object);
    let (before, after) = (side("before"), side("after"));
    let mut keys: Vec<&String> = before
        .iter()
        .chain(after.iter())
        .flat_map(|m| m.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let value = |side: Option<&serde_json::Map<String, Value>>, key: &str| match side
        .and_then(|m| m.get(key))
    {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let text = keys
        .iter()
        .map(|k| format!("{k}: {} → {}", value(before, k), value(after, k)))
        .collect::<Vec<_>>()
        .join("; ");
    if text.chars().count() <= MAX_CHANGE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CHANGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_state_change_reads_before_and_after() {
        let detail = json!({ "before": { "state": "active" }, "after": { "state": "suspended" } });
        assert_eq!(change(&detail), "state: active → suspended");
    }

    #[test]
    fn attributes_read_in_order_and_a_missing_side_as_a_dash() {
        let detail = json!({ "before": { "b": 1 }, "after": { "a": "x", "b": 2 } });
        assert_eq!(change(&detail), "a: — → x; b: 1 → 2");
        assert_eq!(change(&json!("not an object")), "");
    }

    #[test]
    fn a_long_change_is_cut() {
        let detail = json!({ "after": { "name": "n".repeat(1000) } });
        let text = change(&detail);
        assert_eq!(text.chars().count(), MAX_CHANGE_CHARS);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn break_glass_says_which_way_it_went() {
        let on = json!({ "before": { "break_glass": false }, "after": { "break_glass": true } });
        assert_eq!(label(Action::BreakGlass, Some(&on)), "Break-glass on");
        let off = json!({ "after": { "break_glass": false } });
        assert_eq!(label(Action::BreakGlass, Some(&off)), "Break-glass off");
        assert_eq!(label(Action::Suspend, None), "Suspended");
    }
}
