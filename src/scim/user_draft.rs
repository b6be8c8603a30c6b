//! A user as a SCIM request leaves it: built from a POST or PUT body, or changed by PATCH
//! operations. Unknown and read-only attributes are ignored (RFC 7643 §2.1 lets a provider keep
//! only what it supports).

use serde_json::{Map, Value};

use super::{
    error::ScimError,
    patch::{Op, Operation, Path, boolean, field, optional_text, required_text},
};
use crate::db::models::UserAttributes;

/// What a SCIM client sets on a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserDraft {
    pub attributes: UserAttributes,
    pub active: bool,
}

impl UserDraft {
    /// The user a POST or PUT body describes. `active` stays `active_before` when the body does
    /// not say (true for a new user).
    pub fn from_body(body: &Value, active_before: bool) -> Result<UserDraft, ScimError> {
        let body = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a user is a JSON object"))?;
        let mut draft = UserDraft {
            attributes: UserAttributes {
                email: required_text("userName", field(body, "userName"))?,
                ..UserAttributes::default()
            },
            active: active_before,
        };
        for (key, value) in body {
            if key.eq_ignore_ascii_case("userName") || key.eq_ignore_ascii_case("emails") {
                continue;
            }
            if let Ok(path) = Path::parse(key) {
                draft.set(&path, Op::Replace, Some(value))?;
            }
        }
        check_email(&draft.attributes.email)?;
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
        check_email(&self.attributes.email)
    }

    /// Sets (or, with [`Op::Remove`], clears) the attribute at `path`.
    fn set(&mut self, path: &Path, op: Op, value: Option<&Value>) -> Result<(), ScimError> {
        let value = if op == Op::Remove { None } else { value };
        let a = &mut self.attributes;
        match (path.attr.as_str(), path.sub.as_deref()) {
            ("username", None) => match value {
                Some(value) => a.email = required_text("userName", Some(value))?,
                None => return Err(ScimError::mutability("`userName` cannot be removed")),
            },
            ("externalid", None) => a.external_id = optional_text("externalId", value)?,
            ("displayname", None) => a.display_name = optional_text("displayName", value)?,
            ("name", None) => match value {
                None => (a.given_name, a.family_name) = (None, None),
                Some(value) => {
                    for (key, inner) in as_map(Some(value))? {
                        let sub = key.to_ascii_lowercase();
                        self.set_name(&sub, Some(inner))?;
                    }
                }
            },
            ("name", Some(sub)) => self.set_name(sub, value)?,
            ("active", None) => match value {
                Some(value) => self.active = boolean("active", value)?,
                None => return Err(ScimError::mutability("`active` cannot be removed")),
            },
            ("emails", sub) => {
                if let Some(email) = self.email_in(path, sub, value)? {
                    self.attributes.email = email;
                }
            }
            // Read-only (`id`, `meta`, `groups`), extensions and unknown attributes.
            _ => {}
        }
        Ok(())
    }

    fn set_name(&mut self, sub: &str, value: Option<&Value>) -> Result<(), ScimError> {
        match sub {
            "givenname" => self.attributes.given_name = optional_text("name.givenName", value)?,
            "familyname" => self.attributes.family_name = optional_text("name.familyName", value)?,
            _ => {}
        }
        Ok(())
    }

    /// The email an `emails` operation sets, if any: the user has one email, its `userName`, so
    /// a work or primary email (or the only one given) replaces it, and removing it is ignored.
    fn email_in(
        &self,
        path: &Path,
        sub: Option<&str>,
        value: Option<&Value>,
    ) -> Result<Option<String>, ScimError> {
        let Some(value) = value else { return Ok(None) };
        let wanted = match &path.filter {
            None => true,
            Some((key, v)) => {
                (key == "type" && v.eq_ignore_ascii_case("work"))
                    || (key == "primary" && v == "true")
            }
        };
        if !wanted {
            return Ok(None);
        }
        match sub {
            Some("value") => required_text("emails.value", Some(value)).map(Some),
            Some(_) => Ok(None),
            None => {
                let list = match value {
                    Value::Array(list) => list.as_slice(),
                    single => std::slice::from_ref(single),
                };
                let pick = |test: &dyn Fn(&Map<String, Value>) -> bool| {
                    list.iter().filter_map(Value::as_object).find(|e| test(e))
                };
                let chosen = pick(&|e| {
                    field(e, "primary").is_some_and(|p| boolean("primary", p).unwrap_or(false))
                })
                .or_else(|| {
                    pick(&|e| {
                        field(e, "type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| t.eq_ignore_ascii_case("work"))
                    })
                })
                .or_else(|| pick(&|_| true));
                chosen
                    .map(|e| required_text("emails.value", field(e, "value")))
                    .transpose()
            }
        }
    }
}

fn as_map(value: Option<&Value>) -> Result<&Map<String, Value>, ScimError> {
    value.and_then(Value::as_object).ok_or_else(|| {
        ScimError::invalid_syntax("an operation without a path needs an object value")
    })
}

/// A `userName` is the user's email: one `@`, something on each side, no spaces.
fn check_email(email: &str) -> Result<(), ScimError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_value(
            "`userName` must be the user's email address",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::patch::operations;
    use serde_json::json;

    fn alice() -> UserDraft {
        UserDraft::from_body(
            &json!({"userName": "alice@acme.test", "name": {"givenName": "Alice"}, "title": "x"}),
            true,
        )
        .unwrap()
    }

    fn patched(body: Value) -> Result<UserDraft, ScimError> {
        let mut draft = alice();
        draft.apply(&operations(&body)?)?;
        Ok(draft)
    }

    #[test]
    fn a_body_needs_a_username_that_is_an_email() {
        assert_eq!(alice().attributes.given_name.as_deref(), Some("Alice"));
        assert!(alice().active);
        for body in [
            json!({}),
            json!({"userName": "alice"}),
            json!({"userName": 7}),
            json!([]),
        ] {
            assert!(UserDraft::from_body(&body, true).is_err(), "{body}");
        }
        let inactive = UserDraft::from_body(&json!({"userName": "a@b", "active": false}), true);
        assert!(!inactive.unwrap().active);
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
            json!({"op": "replace", "path": "userName", "value": "not an email"}),
            json!({"op": "remove", "path": "userName"}),
            json!({"op": "replace", "path": "active", "value": "maybe"}),
            json!({"op": "replace", "path": "displayName", "value": "x".repeat(300)}),
            json!({"op": "replace", "value": "active"}),
        ] {
            assert!(patched(json!({"Operations": [op]})).is_err(), "{op}");
        }
    }
}
