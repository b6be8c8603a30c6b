//! PATCH requests (RFC 7644 §3.5.2): the `Operations` list, each operation's `op` (any case, as
//! Entra sends `Replace`) and `path` (`name.givenName`, `emails[type eq "work"].value`,
//! `members[value eq "…"]`), and the checks on the values they carry.

use serde_json::{Map, Value};

use super::{
    error::ScimError,
    filter::{Token, normalise, tokenize},
    limits::{MAX_OPERATIONS, MAX_TEXT},
};

/// The schema URN of a PATCH body.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

/// Where an operation applies: `attr`, or `attr.sub`, or `attr[key eq "value"].sub`, lowercased
/// and without the core schema URN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    pub attr: String,
    /// A value filter on a multi-valued attribute: `(sub-attribute, value)`.
    pub filter: Option<(String, String)>,
    pub sub: Option<String>,
}

impl Path {
    /// Parses a PATCH `path` (or a key of a value map: `name.givenName`).
    pub fn parse(text: &str) -> Result<Path, ScimError> {
        let invalid =
            || ScimError::invalid_path(format!("the path `{}` is not supported", clip(text)));
        let tokens = tokenize(text).map_err(|_| invalid())?;
        let (attr, filter, sub) = match tokens.as_slice() {
            [Token::Word(attr)] => (attr.clone(), None, None),
            [
                Token::Word(attr),
                Token::Open,
                Token::Word(key),
                Token::Word(op),
                Token::Str(value),
                Token::Close,
                rest @ ..,
            ] if op.eq_ignore_ascii_case("eq") => {
                let sub = match rest {
                    [] => None,
                    [Token::Dot, Token::Word(sub)] => Some(sub.to_ascii_lowercase()),
                    _ => return Err(invalid()),
                };
                (
                    attr.clone(),
                    Some((key.to_ascii_lowercase(), value.clone())),
                    sub,
                )
            }
            [
                Token::Word(attr),
                Token::Open,
                Token::Word(key),
                Token::Word(op),
                Token::Word(value),
                Token::Close,
                rest @ ..,
            ] if op.eq_ignore_ascii_case("eq") && rest.is_empty() => {
                // `emails[primary eq true]`
                (
                    attr.clone(),
                    Some((key.to_ascii_lowercase(), value.to_ascii_lowercase())),
                    None,
                )
            }
            _ => return Err(invalid()),
        };
        let attr = normalise(&attr);
        if attr.starts_with("urn:") {
            // An extension's attribute (`…:enterprise:2.0:User:department`): not kept.
            return Ok(Path { attr, filter, sub });
        }
        Ok(match attr.split_once('.') {
            Some((attr, inner)) if filter.is_none() && sub.is_none() => Path {
                attr: attr.to_owned(),
                filter: None,
                sub: Some(inner.to_owned()),
            },
            Some(_) => return Err(invalid()),
            None => Path { attr, filter, sub },
        })
    }
}

/// One PATCH operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<Path>,
    pub value: Option<Value>,
}

/// The operations of a PATCH body, checked: at most [`MAX_OPERATIONS`], each with a known `op`,
/// a parsable `path`, and (but for `remove`) a value.
pub fn operations(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body is a JSON object"))?;
    let list = field(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body needs an `Operations` array"))?;
    if list.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "at most {MAX_OPERATIONS} operations per request"
        )));
    }
    list.iter()
        .map(|operation| {
            let operation = operation
                .as_object()
                .ok_or_else(|| ScimError::invalid_syntax("each operation is a JSON object"))?;
            let op = match field(operation, "op").and_then(Value::as_str) {
                Some(op) if op.eq_ignore_ascii_case("add") => Op::Add,
                Some(op) if op.eq_ignore_ascii_case("replace") => Op::Replace,
                Some(op) if op.eq_ignore_ascii_case("remove") => Op::Remove,
                _ => {
                    return Err(ScimError::invalid_syntax(
                        "each operation's `op` is add, replace or remove",
                    ));
                }
            };
            let path = match field(operation, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) => Some(Path::parse(path)?),
                Some(_) => return Err(ScimError::invalid_path("`path` is a string")),
            };
            let value = field(operation, "value").filter(|v| !v.is_null()).cloned();
            match (op, &path, &value) {
                (Op::Remove, None, _) => Err(ScimError::no_target("`remove` needs a `path`")),
                (Op::Add | Op::Replace, _, None) => Err(ScimError::invalid_value(
                    "`add` and `replace` need a `value`",
                )),
                _ => Ok(Operation { op, path, value }),
            }
        })
        .collect()
}

/// A member of a JSON object, its name compared whatever its case (SCIM attribute names are
/// case-insensitive).
pub fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// An optional text attribute: a string of at most [`MAX_TEXT`] characters without NUL; null
/// or empty is none.
pub fn optional_text(name: &str, value: Option<&Value>) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => {
            if text.chars().count() > MAX_TEXT || text.contains('\0') {
                return Err(ScimError::invalid_value(format!(
                    "`{name}` must have at most {MAX_TEXT} characters and no NUL"
                )));
            }
            Ok(Some(text.trim().to_owned()))
        }
        Some(_) => Err(ScimError::invalid_value(format!(
            "`{name}` must be a string"
        ))),
    }
}

/// A required text attribute.
pub fn required_text(name: &str, value: Option<&Value>) -> Result<String, ScimError> {
    optional_text(name, value)?
        .ok_or_else(|| ScimError::invalid_value(format!("`{name}` is required")))
}

/// A boolean, or a string `"true"`/`"false"` in any case (as Entra sends it).
pub fn boolean(name: &str, value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value(format!(
            "`{name}` must be true or false"
        ))),
    }
}

/// The first 100 characters of `text`, for messages.
pub fn clip(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_of_every_shape_identity_providers_send_parse() {
        let path = |p| Path::parse(p).unwrap();
        assert_eq!(path("active").attr, "active");
        assert_eq!(
            path("name.givenName"),
            Path {
                attr: "name".into(),
                filter: None,
                sub: Some("givenname".into())
            }
        );
        assert_eq!(
            path("emails[type eq \"work\"].value"),
            Path {
                attr: "emails".into(),
                filter: Some(("type".into(), "work".into())),
                sub: Some("value".into())
            }
        );
        assert_eq!(
            path("members[value eq \"2819c223\"]").filter,
            Some(("value".into(), "2819c223".into()))
        );
        assert_eq!(
            path("urn:ietf:params:scim:schemas:core:2.0:User:userName").attr,
            "username"
        );
        assert!(Path::parse("emails[type co \"w\"]").is_err());
        assert!(Path::parse("a b").is_err());
    }

    #[test]
    fn operations_need_a_known_op_and_remove_needs_a_path() {
        let ops = operations(&json!({"Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "replace", "value": {"active": false}},
        ]}))
        .unwrap();
        assert_eq!(ops[0].op, Op::Replace);
        assert_eq!(ops[1].path, None);
        let refused = |body| operations(&body).unwrap_err().scim_type;
        assert_eq!(
            refused(json!({"Operations": [{"op": "move"}]})),
            Some("invalidSyntax")
        );
        assert_eq!(
            refused(json!({"Operations": [{"op": "remove"}]})),
            Some("noTarget")
        );
        assert_eq!(refused(json!({"ops": []})), Some("invalidSyntax"));
        assert!(boolean("active", &json!("FALSE")).is_ok_and(|b| !b));
        assert!(boolean("active", &json!(0)).is_err());
    }
}
