//! The user a Universal Logout request names: an RFC 9493 subject identifier, resolved only
//! inside the caller's org.

use diesel_async::AsyncPgConnection;
use serde_json::{Map, Value};

use crate::{
    db::models::{Org, User},
    error::AppError,
};

/// Most members an `aliases` subject may list.
const MAX_ALIASES: usize = 16;

/// A subject identifier this app can resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Email(String),
    IssSub {
        iss: String,
        sub: String,
    },
    /// The app's own user id, as the admin dashboard shows it.
    Opaque(String),
    /// Several identifiers of one user; those of unsupported formats are left out.
    Aliases(Vec<Subject>),
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

/// Reads the subject from a request body: `{"sub_id": {...}}`, or the older `{"subject": {...}}`.
pub fn parse(body: &[u8]) -> Result<Subject, AppError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut body) = value else {
        return Err(bad("the body must be a JSON object with a sub_id member"));
    };
    let sub_id = body
        .remove("sub_id")
        .or_else(|| body.remove("subject"))
        .ok_or_else(|| bad("the body has no sub_id (the subject identifier of the user)"))?;
    let Value::Object(sub_id) = sub_id else {
        return Err(bad(
            "sub_id must be an object, such as {\"format\": \"email\", \"email\": \"…\"}",
        ));
    };
    match parse_identifier(&sub_id, true)? {
        Some(subject) => Ok(subject),
        None => Err(unsupported(&sub_id)),
    }
}

/// One subject identifier, as an object (a Shared Signals event's subject).
pub fn from_identifier(identifier: &Map<String, Value>) -> Result<Subject, AppError> {
    parse_identifier(identifier, true)?.ok_or_else(|| unsupported(identifier))
}

fn unsupported(identifier: &Map<String, Value>) -> AppError {
    let format = identifier
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("?");
    bad(format!(
        "unsupported subject format: {format} (supported: email, iss_sub, opaque, aliases)"
    ))
}

/// One identifier; `None` for a well-formed identifier of a format this app does not support.
fn parse_identifier(id: &Map<String, Value>, top_level: bool) -> Result<Option<Subject>, AppError> {
    let format = id
        .get("format")
        .ok_or_else(|| bad("the subject identifier has no format"))?
        .as_str()
        .ok_or_else(|| bad("the subject identifier's format must be a string"))?;
    let member = |name: &str| -> Result<String, AppError> {
        match id.get(name) {
            Some(Value::String(s)) if s.chars().any(char::is_control) => Err(bad(format!(
                "{format}: {name} must not contain control characters"
            ))),
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 1024 => {
                Ok(s.trim().to_owned())
            }
            Some(Value::String(_)) => {
                Err(bad(format!("{format}: {name} must be a non-empty string")))
            }
            Some(_) => Err(bad(format!("{format}: {name} must be a string"))),
            None => Err(bad(format!(
                "the {format} subject identifier needs a {name} member"
            ))),
        }
    };
    Ok(Some(match format {
        "email" => Subject::Email(member("email")?),
        "iss_sub" => Subject::IssSub {
            iss: member("iss")?,
            sub: member("sub")?,
        },
        "opaque" => Subject::Opaque(member("id")?),
        "aliases" if !top_level => return Err(bad("aliases may not contain aliases")),
        "aliases" => {
            let identifiers = match id.get("identifiers") {
                Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_ALIASES => list,
                Some(Value::Array(_)) => {
                    return Err(bad(format!(
                        "aliases: identifiers must list 1 to {MAX_ALIASES} identifiers"
                    )));
                }
                _ => {
                    return Err(bad(
                        "the aliases subject identifier needs an identifiers array",
                    ));
                }
            };
            let mut supported = Vec::new();
            for identifier in identifiers {
                let Value::Object(identifier) = identifier else {
                    return Err(bad("aliases: every identifier must be an object"));
                };
                supported.extend(parse_identifier(identifier, false)?);
            }
            if supported.is_empty() {
                return Err(bad(
                    "unsupported subject format: no identifier in aliases has a supported format",
                ));
            }
            Subject::Aliases(supported)
        }
        _ => return Ok(None),
    }))
}

/// 404: the org has no user the subject names.
pub fn no_such_user() -> AppError {
    AppError::NotFound("no such user in this organisation".into())
}

/// The org's user the subject names. Another org's user is "no such user".
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    org: &Org,
    subject: &Subject,
) -> Result<User, AppError> {
    match subject {
        Subject::Aliases(members) => {
            let mut found: Option<User> = None;
            for member in members {
                match Box::pin(resolve(conn, org, member)).await {
                    Ok(user) if found.as_ref().is_some_and(|f| f.id != user.id) => {
                        return Err(bad("the aliases name different users"));
                    }
                    Ok(user) => found = Some(user),
                    Err(AppError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            found.ok_or_else(no_such_user)
        }
        single => resolve_one(conn, org, single)
            .await?
            .ok_or_else(no_such_user),
    }
}

async fn resolve_one(
    conn: &mut AsyncPgConnection,
    org: &Org,
    subject: &Subject,
) -> Result<Option<User>, AppError> {
    Ok(match subject {
        Subject::Email(email) => User::find_by_email(conn, org.id, email).await?,
        Subject::IssSub { iss, sub } => {
            let same_issuer = org
                .idp_issuer
                .as_deref()
                .is_some_and(|own| own.trim_end_matches('/') == iss.trim_end_matches('/'));
            match (&org.idp_issuer, same_issuer) {
                (Some(own), true) => User::find_by_oidc(conn, org.id, own, sub).await?,
                _ => None,
            }
        }
        Subject::Opaque(id) => match id.parse() {
            Ok(id) => User::find_in_org(conn, org.id, id).await?,
            Err(_) => None,
        },
        Subject::Aliases(_) => unreachable!("resolved by resolve"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Result<Subject, String> {
        parse(body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn each_supported_format_parses() {
        assert_eq!(
            parsed(r#"{"sub_id":{"format":"email","email":"jane@acme.test"}}"#),
            Ok(Subject::Email("jane@acme.test".into()))
        );
        assert_eq!(
            parsed(r#"{"subject":{"format":"iss_sub","iss":"https://idp","sub":"123"}}"#),
            Ok(Subject::IssSub {
                iss: "https://idp".into(),
                sub: "123".into()
            })
        );
        assert_eq!(
            parsed(r#"{"sub_id":{"format":"opaque","id":"abc"}}"#),
            Ok(Subject::Opaque("abc".into()))
        );
        assert_eq!(
            parsed(
                r#"{"sub_id":{"format":"aliases","identifiers":[
                    {"format":"phone_number","phone_number":"+1"},
                    {"format":"email","email":"jane@acme.test"}]}}"#
            ),
            Ok(Subject::Aliases(vec![Subject::Email(
                "jane@acme.test".into()
            )]))
        );
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let cases = [
            ("not json", "not valid JSON"),
            ("[1,2]", "must be a JSON object"),
            ("{}", "has no sub_id"),
            (r#"{"sub_id":"jane@acme.test"}"#, "sub_id must be an object"),
            (r#"{"sub_id":{}}"#, "has no format"),
            (r#"{"sub_id":{"format":7}}"#, "format must be a string"),
            (r#"{"sub_id":{"format":"email"}}"#, "needs a email member"),
            (
                r#"{"sub_id":{"format":"email","email":""}}"#,
                "non-empty string",
            ),
            (
                r#"{"sub_id":{"format":"email","email":["x"]}}"#,
                "email must be a string",
            ),
            (
                r#"{"sub_id":{"format":"email","email":"\u0000"}}"#,
                "must not contain control characters",
            ),
            (
                r#"{"sub_id":{"format":"opaque","id":"a\nb"}}"#,
                "must not contain control characters",
            ),
            (
                r#"{"sub_id":{"format":"phone_number","phone_number":"+1"}}"#,
                "unsupported subject format: phone_number",
            ),
            (
                r#"{"sub_id":{"format":"did","url":"did:x"}}"#,
                "unsupported subject format: did",
            ),
            (
                r#"{"sub_id":{"format":"aliases","identifiers":[]}}"#,
                "1 to 16",
            ),
            (
                r#"{"sub_id":{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[]}]}}"#,
                "may not contain aliases",
            ),
            (
                r#"{"sub_id":{"format":"aliases","identifiers":[{"format":"uri","uri":"x"}]}}"#,
                "unsupported subject format",
            ),
        ];
        for (body, expected) in cases {
            let error = parsed(body).expect_err(body);
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn deeply_nested_json_is_refused_not_overflowed() {
        let body = format!(
            r#"{{"sub_id":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parsed(&body).unwrap_err().contains("not valid JSON"));
    }
}
