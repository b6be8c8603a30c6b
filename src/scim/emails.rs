//! A user's SCIM `emails`, kept as the IdP set them (`value`, `type`, `primary`), and the PATCH
//! operations on them (RFC 7644 §3.5.2): `emails`, `emails.value`, `emails[type eq "work"]`,
//! `emails[type eq "work"].value`. Bounded: [`MAX_EMAILS`] entries of bounded text.

use serde_json::{Map, Value, json};

use super::{
    error::ScimError,
    limits::MAX_EMAILS,
    patch::{Op, Path, boolean, field, optional_text, required_text},
};

/// One entry of `emails`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Email {
    pub value: String,
    pub kind: Option<String>,
    pub primary: Option<bool>,
}

impl Email {
    fn to_json(&self) -> Value {
        let mut email = json!({ "value": self.value });
        if let Some(kind) = &self.kind {
            email["type"] = kind.as_str().into();
        }
        if let Some(primary) = self.primary {
            email["primary"] = primary.into();
        }
        email
    }

    fn parse(value: &Value) -> Result<Email, ScimError> {
        let object = value
            .as_object()
            .ok_or_else(|| ScimError::invalid_value("each email is an object with a `value`"))?;
        let mut email = Email {
            value: address(field(object, "value"))?,
            ..Email::default()
        };
        for (key, value) in object {
            email.set(&key.to_ascii_lowercase(), Some(value))?;
        }
        Ok(email)
    }

    /// Sets (or with `None` clears) the sub-attribute `sub`; `value` cannot be cleared.
    fn set(&mut self, sub: &str, value: Option<&Value>) -> Result<(), ScimError> {
        match sub {
            "value" => self.value = address(value)?,
            "type" => self.kind = optional_text("emails.type", value)?,
            "primary" => {
                self.primary = value
                    .filter(|v| !v.is_null())
                    .map(|v| boolean("emails.primary", v))
                    .transpose()?
            }
            // `display` and unknown sub-attributes are not kept.
            _ => {}
        }
        Ok(())
    }

    /// Whether this entry meets `emails[key eq "v"]`.
    fn matches(&self, (key, v): &(String, String)) -> bool {
        match key.as_str() {
            "value" => self.value.eq_ignore_ascii_case(v),
            "type" => self
                .kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(v)),
            "primary" => self.primary.unwrap_or(false).to_string() == v.to_ascii_lowercase(),
            _ => false,
        }
    }
}

fn address(value: Option<&Value>) -> Result<String, ScimError> {
    let value = required_text("emails.value", value)?;
    if value.chars().count() > 254 || value.chars().any(char::is_control) {
        return Err(ScimError::invalid_value(
            "`emails.value` must have at most 254 characters and no control characters",
        ));
    }
    Ok(value)
}

/// The emails stored as JSON (`None` or anything but an array: none).
pub fn stored(value: Option<&Value>) -> Vec<Email> {
    value
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|e| Email::parse(e).ok()).collect())
        .unwrap_or_default()
}

/// `emails` as JSON to store.
pub fn to_json(emails: &[Email]) -> Value {
    emails.iter().map(Email::to_json).collect()
}

/// The emails a body's `emails` (a list, or one object) names, checked.
pub fn parse(value: &Value) -> Result<Vec<Email>, ScimError> {
    let list = match value {
        Value::Array(list) => list.as_slice(),
        Value::Null => &[],
        single => std::slice::from_ref(single),
    };
    if list.len() > MAX_EMAILS {
        return Err(ScimError::invalid_value(format!(
            "at most {MAX_EMAILS} emails"
        )));
    }
    let emails: Vec<Email> = list.iter().map(Email::parse).collect::<Result<_, _>>()?;
    if emails.iter().filter(|e| e.primary == Some(true)).count() > 1 {
        return Err(ScimError::invalid_value(
            "at most one email is `primary` (RFC 7643 §2.4)",
        ));
    }
    Ok(emails)
}

/// `emails` after the operation `op` at `path` with `value`.
pub fn apply(
    mut emails: Vec<Email>,
    path: &Path,
    op: Op,
    value: Option<&Value>,
) -> Result<Vec<Email>, ScimError> {
    let hits = |emails: &[Email]| -> Vec<usize> {
        (0..emails.len())
            .filter(|&i| path.filter.as_ref().is_none_or(|f| emails[i].matches(f)))
            .collect()
    };
    let mut touched = Vec::new();
    match (op, path.sub.as_deref(), value) {
        (Op::Remove, None, _) | (Op::Remove, Some("value"), _) => {
            emails.retain(|e| path.filter.as_ref().is_some_and(|f| !e.matches(f)));
        }
        (Op::Remove, Some(sub), _) => {
            for i in hits(&emails) {
                emails[i].set(sub, None)?;
            }
        }
        (_, _, None) => {
            return Err(ScimError::invalid_value(
                "`add` and `replace` need a `value`",
            ));
        }
        (op, None, Some(value)) if path.filter.is_none() => {
            let new = parse(value)?;
            if op == Op::Replace {
                emails.clear();
            }
            for email in new {
                emails.retain(|e| !e.value.eq_ignore_ascii_case(&email.value));
                touched.push(email.value.clone());
                emails.push(email);
            }
        }
        (_, sub, Some(value)) => {
            let found = hits(&emails);
            let set = |email: &mut Email| -> Result<(), ScimError> {
                match (sub, value.as_object()) {
                    (Some(sub), _) => email.set(sub, Some(value)),
                    (None, Some(object)) => {
                        for (key, inner) in object {
                            email.set(&key.to_ascii_lowercase(), Some(inner))?;
                        }
                        Ok(())
                    }
                    (None, None) => Err(ScimError::invalid_value("an email is an object")),
                }
            };
            if found.is_empty() {
                // Entra replaces `emails[type eq "work"].value` on users without one: add it.
                let mut email = Email::default();
                if let Some((key, v)) = &path.filter {
                    email.set(key, Some(&Value::String(v.clone())))?;
                }
                set(&mut email)?;
                email.value = address(Some(&Value::String(email.value.clone())))?;
                touched.push(email.value.clone());
                emails.push(email);
            }
            for i in found {
                set(&mut emails[i])?;
                touched.push(emails[i].value.clone());
            }
        }
    }
    if emails.len() > MAX_EMAILS {
        return Err(ScimError::invalid_value(format!(
            "at most {MAX_EMAILS} emails"
        )));
    }
    // RFC 7644 §3.5.2: a value made primary makes the others not primary.
    let primary = emails
        .iter()
        .rev()
        .find(|e| e.primary == Some(true) && touched.contains(&e.value))
        .map(|e| e.value.clone());
    if let Some(primary) = primary {
        for email in emails.iter_mut().filter(|e| e.value != primary) {
            if email.primary == Some(true) {
                email.primary = Some(false);
            }
        }
    }
    Ok(emails)
}

/// The email that stands for the user: the primary one, else the first of type `work`, else
/// the only one.
pub fn chosen(emails: &[Email]) -> Option<&Email> {
    emails
        .iter()
        .find(|e| e.primary == Some(true))
        .or_else(|| {
            emails.iter().find(|e| {
                e.kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("work"))
            })
        })
        .or(match emails {
            [only] => Some(only),
            _ => None,
        })
}

/// Whether `object` has an `emails` member (for bodies: absent means "derived").
pub fn named(object: &Map<String, Value>) -> Option<&Value> {
    field(object, "emails")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[test]
    fn emails_keep_what_was_given_and_a_new_primary_demotes_the_old() {
        let given = json!([{"value": "a@x.test", "type": "home-ish", "primary": false}]);
        let emails = parse(&given).unwrap();
        assert_eq!(to_json(&emails), given, "type and primary as given");

        let added = apply(
            emails,
            &path("emails"),
            Op::Add,
            Some(&json!([{"value": "b@x.test", "primary": true}])),
        )
        .unwrap();
        assert_eq!(added.len(), 2);
        let work = apply(
            added,
            &path("emails[type eq \"work\"].value"),
            Op::Replace,
            Some(&json!("c@x.test")),
        )
        .unwrap();
        assert_eq!(work[2].kind.as_deref(), Some("work"), "upserted");
        assert_eq!(chosen(&work).unwrap().value, "b@x.test");
        let removed = apply(
            work,
            &path("emails[value eq \"b@x.test\"]"),
            Op::Remove,
            None,
        );
        assert_eq!(removed.unwrap().len(), 2);
        assert!(
            apply(Vec::new(), &path("emails"), Op::Remove, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        let many: Vec<Value> = (0..=MAX_EMAILS)
            .map(|i| json!({"value": i.to_string()}))
            .collect();
        for bad in [
            json!([{"type": "work"}]),
            json!([{"value": "a\u{7}b"}]),
            json!([{"value": "a", "primary": true}, {"value": "b", "primary": true}]),
            json!(["a@x.test"]),
            Value::Array(many),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
