//! A user as a SCIM request leaves it: built from a POST or PUT body, or changed by PATCH
//! operations. Unknown and read-only attributes are ignored (RFC 7643 §2.1 lets a provider keep
//! only what it supports).

use serde_json::{Map, Value};

use super::{
    emails,
    error::ScimError,
    patch::{Op, Operation, Path, boolean, field, optional_text, required_text},
    resource,
};
use crate::db::models::UserAttributes;

/// What a SCIM client sets on a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDraft {
    pub attributes: UserAttributes,
    pub active: bool,
}

impl UserDraft {
    /// The user a POST or PUT body describes. Without `active` in the body, the state stays
    /// that of `previous` (active for a new user).
    pub fn from_body(body: &Value, previous: Option<&UserDraft>) -> Result<UserDraft, ScimError> {
        let body = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a user is a JSON object"))?;
        let emails = emails::named(body)
            .filter(|v| !v.is_null())
            .map(|v| emails::parse(v).map(|e| emails::to_json(&e)))
            .transpose()?;
        let mut draft = UserDraft {
            attributes: UserAttributes {
                email: user_name(field(body, "userName"))?,
                emails,
                active_unassigned: previous.is_some_and(|p| p.attributes.active_unassigned),
                ..UserAttributes::default()
            },
            active: previous.is_none_or(|p| p.active),
        };
        for (key, value) in body {
            if key.eq_ignore_ascii_case("userName") || key.eq_ignore_ascii_case("emails") {
                continue;
            }
            if let Ok(path) = Path::parse(key) {
                draft.set(&path, Op::Replace, Some(value))?;
            }
        }
        Ok(draft)
    }

    /// Applies PATCH `operations` in order.
    pub fn apply(&mut self, operations: &[Operation]) -> Result<(), ScimError> {
        for operation in operations {
            match &operation.path {
                Some(path) => self.set(path, operation.op, operation.value.as_ref())?,
                None => {
                    let map = as_map(operation.value.as_ref())?;
                    for (key, value) in map {
                        // Okta and Entra put attribute names, even dotted paths, in the map.
                        self.set(&Path::parse(key)?, operation.op, Some(value))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets (or, with [`Op::Remove`], clears) the attribute at `path`.
    fn set(&mut self, path: &Path, op: Op, value: Option<&Value>) -> Result<(), ScimError> {
        let value = if op == Op::Remove { None } else { value };
        let a = &mut self.attributes;
        match (path.attr.as_str(), path.sub.as_deref()) {
            ("username", None) => match value {
                Some(value) => a.email = user_name(Some(value))?,
                None => return Err(ScimError::mutability("`userName` cannot be removed")),
            },
            ("externalid", None) => a.external_id = optional_text("externalId", value)?,
            ("displayname", None) => a.display_name = optional_text("displayName", value)?,
            ("name", None) => match value {
                None => (a.given_name, a.family_name, a.name_formatted) = (None, None, None),
                Some(value) => {
                    for (key, inner) in as_map(Some(value))? {
                        let sub = key.to_ascii_lowercase();
                        self.set_name(&sub, Some(inner))?;
                    }
                }
            },
            ("name", Some(sub)) => self.set_name(sub, value)?,
            // Removing `active` leaves the state as it is (a state change takes an explicit
            // value): the attribute is only no longer shown, until set again.
            ("active", None) => match value {
                Some(value) => {
                    (self.active, a.active_unassigned) = (boolean("active", value)?, false)
                }
                None => a.active_unassigned = true,
            },
            ("emails", _) => self.set_emails(path, op, value)?,
            // Read-only (`id`, `meta`, `groups`), extensions and unknown attributes.
            _ => {}
        }
        Ok(())
    }

    fn set_name(&mut self, sub: &str, value: Option<&Value>) -> Result<(), ScimError> {
        let a = &mut self.attributes;
        match sub {
            "givenname" => a.given_name = optional_text("name.givenName", value)?,
            "familyname" => a.family_name = optional_text("name.familyName", value)?,
            "formatted" => a.name_formatted = optional_text("name.formatted", value)?,
            _ => {}
        }
        Ok(())
    }

    /// Stores `emails` as the operation leaves them. When the user's `userName` is an email
    /// address and the email standing for the user (primary, else work, else the only one)
    /// changes, the `userName` follows it (Okta and Entra change a user's email this way); a
    /// `userName` that is no email address stays the identifier whatever the emails.
    fn set_emails(&mut self, path: &Path, op: Op, value: Option<&Value>) -> Result<(), ScimError> {
        let before = emails::stored(self.attributes.emails.as_ref());
        let after = emails::apply(before.clone(), path, op, value)?;
        let chosen = emails::chosen(&after);
        if chosen != emails::chosen(&before)
            && resource::is_email(&self.attributes.email)
            && let Some(email) = chosen
        {
            self.attributes.email = email.value.clone();
        }
        self.attributes.emails = Some(emails::to_json(&after));
        Ok(())
    }
}

fn as_map(value: Option<&Value>) -> Result<&Map<String, Value>, ScimError> {
    value.and_then(Value::as_object).ok_or_else(|| {
        ScimError::invalid_syntax("an operation without a path needs an object value")
    })
}

/// A `userName`: any text of 1 to 254 characters (trimmed) without control characters. It is
/// the sign-in identifier; one that is no email address cannot be used with a password.
fn user_name(value: Option<&Value>) -> Result<String, ScimError> {
    let name = required_text("userName", value)?;
    if name.chars().count() > 254 || name.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(
            "`userName` must have 1 to 254 characters and no control characters",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::patch::operations;
    use serde_json::json;

    fn alice() -> UserDraft {
        UserDraft::from_body(
            &json!({"userName": "alice@acme.test", "name": {"givenName": "Alice"}, "title": "x"}),
            None,
        )
        .unwrap()
    }

    fn patched(body: Value) -> Result<UserDraft, ScimError> {
        let mut draft = alice();
        draft.apply(&operations(&body)?)?;
        Ok(draft)
    }

    #[test]
    fn a_body_needs_a_username_of_one_to_254_characters_without_control_characters() {
        assert_eq!(alice().attributes.given_name.as_deref(), Some("Alice"));
        assert!(alice().active);
        for body in [
            json!({}),
            json!({"userName": "   "}),
            json!({"userName": "a\u{1b}b"}),
            json!({"userName": "x".repeat(255)}),
            json!({"userName": 7}),
            json!([]),
        ] {
            assert!(UserDraft::from_body(&body, None).is_err(), "{body}");
        }
        let any = UserDraft::from_body(&json!({"userName": "  Alice Smith (EU) "}), None);
        assert_eq!(any.unwrap().attributes.email, "Alice Smith (EU)", "trimmed");
        let longest = json!({"userName": "x".repeat(254)});
        assert!(UserDraft::from_body(&longest, None).is_ok());
        let inactive = UserDraft::from_body(&json!({"userName": "a@b", "active": false}), None);
        assert!(!inactive.unwrap().active);
    }

    #[test]
    fn emails_follow_to_the_username_only_when_it_is_an_email_address() {
        let set_email = json!({"Operations": [
            {"op": "add", "path": "emails", "value": [{"value": "al@acme.test", "type": "work"}]},
        ]});
        let mut bob = UserDraft::from_body(&json!({"userName": "bob"}), None).unwrap();
        bob.apply(&operations(&set_email).unwrap()).unwrap();
        assert_eq!(
            bob.attributes.email, "bob",
            "not an email: stays the identifier"
        );
        let emails = bob.attributes.emails.unwrap();
        assert_eq!(emails, json!([{"value": "al@acme.test", "type": "work"}]));
        assert_eq!(patched(set_email).unwrap().attributes.email, "al@acme.test");
    }

    #[test]
    fn removing_name_emails_or_active_unassigns_them_and_keeps_the_state() {
        let mut suspended = alice();
        suspended.active = false;
        let remove = json!({"Operations": [
            {"op": "remove", "path": "name"},
            {"op": "remove", "path": "emails"},
            {"op": "remove", "path": "active"},
        ]});
        suspended.apply(&operations(&remove).unwrap()).unwrap();
        let a = &suspended.attributes;
        assert_eq!((&a.given_name, &a.name_formatted), (&None, &None));
        assert_eq!(a.emails, Some(json!([])));
        assert!(a.active_unassigned);
        assert!(!suspended.active, "removing `active` reactivates nobody");
        let set = json!({"Operations": [{"op": "add", "path": "active", "value": true}]});
        suspended.apply(&operations(&set).unwrap()).unwrap();
        assert!(suspended.active && !suspended.attributes.active_unassigned);
    }

    #[test]
    fn okta_and_entra_deactivations_both_set_active_false() {
        let okta = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
        let entra = json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
        assert!(!patched(okta).unwrap().active);
        assert!(!patched(entra).unwrap().active);
        let back = json!({"Operations": [{"op": "replace", "path": "active", "value": true}]});
        assert!(patched(back).unwrap().active);
    }

    #[test]
    fn names_emails_and_ids_are_patched_by_path_and_by_value_map() {
        let draft = patched(json!({"Operations": [
            {"op": "replace", "path": "name.givenName", "value": "Alicia"},
            {"op": "add", "path": "name.familyName", "value": "Smith"},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "alicia@acme.test"},
            {"op": "add", "path": "externalId", "value": "00u1"},
            {"op": "replace", "value": {"displayName": "Alicia S", "name.familyName": "Smyth"}},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "x"},
        ]}))
        .unwrap();
        let a = draft.attributes;
        assert_eq!(a.given_name.as_deref(), Some("Alicia"));
        assert_eq!(a.family_name.as_deref(), Some("Smyth"));
        assert_eq!(a.email, "alicia@acme.test");
        assert_eq!(a.external_id.as_deref(), Some("00u1"));
        assert_eq!(a.display_name.as_deref(), Some("Alicia S"));
        let removed = patched(json!({"Operations": [{"op": "remove", "path": "name.givenName"}]}));
        assert_eq!(removed.unwrap().attributes.given_name, None);
    }

    #[test]
    fn bad_values_are_refused() {
        for op in [
            json!({"op": "replace", "path": "userName", "value": "line\nbreak"}),
            json!({"op": "remove", "path": "userName"}),
            json!({"op": "replace", "path": "active", "value": "maybe"}),
            json!({"op": "replace", "path": "displayName", "value": "x".repeat(300)}),
            json!({"op": "replace", "value": "active"}),
        ] {
            assert!(patched(json!({"Operations": [op]})).is_err(), "{op}");
        }
    }
}
