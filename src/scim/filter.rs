//! The SCIM filters this provider understands (RFC 7644 §3.4.2.2): comparisons with `eq`,
//! joined by `and`. Users: `userName`, `externalId`, `id`, `displayName`, `emails.value` and
//! `emails[value eq "…"]`; groups: `displayName`, `externalId`, `id`, `members.value` and
//! `members[value eq "…"]`. Anything else is a 400 `invalidFilter`, never a guess.

use super::{error::ScimError, limits::MAX_FILTER};

/// What is filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

/// An attribute a filter may compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    Id,
    /// A user's `userName` (their email, compared whatever its case).
    UserName,
    /// A user's email (`emails.value`), the same as the `userName`.
    Email,
    ExternalId,
    DisplayName,
    /// A group's member's id.
    MemberValue,
}

/// `attr eq value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub attr: Attr,
    pub value: String,
}

/// A token of a filter or a PATCH path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    /// An attribute path, an operator or a bare literal (`true`, `42`).
    Word(String),
    Str(String),
    Open,
    Close,
    Dot,
}

/// Splits a filter or a PATCH path into tokens.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, ScimError> {
    if text.len() > MAX_FILTER {
        return Err(ScimError::invalid_filter(format!(
            "the filter is longer than {MAX_FILTER} bytes"
        )));
    }
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '[' => tokens.push(Token::Open),
            ']' => tokens.push(Token::Close),
            '.' if matches!(tokens.last(), Some(Token::Close)) => tokens.push(Token::Dot),
            '"' => {
                let mut escaped = false;
                let mut end = None;
                for (i, c) in chars.by_ref() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| ScimError::invalid_filter("a string is not closed"))?;
                let value: String = serde_json::from_str(&text[start..=end])
                    .map_err(|_| ScimError::invalid_filter("a string is not valid JSON"))?;
                tokens.push(Token::Str(value));
            }
            c if is_word_char(c) => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_owned()));
            }
            other => {
                return Err(ScimError::invalid_filter(format!(
                    "unexpected character {other:?}"
                )));
            }
        }
    }
    Ok(tokens)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '$' | '-' | '_' | '+')
}

/// The schema URNs an attribute path may start with.
const SCHEMA_PREFIXES: &[&str] = &[
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
];

/// An attribute path, lowercased, without its core schema URN.
pub(crate) fn normalise(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    SCHEMA_PREFIXES
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .map_or_else(|| lower.clone(), str::to_owned)
}

/// Parses `filter` for `resource`.
pub fn parse(filter: &str, resource: Resource) -> Result<Vec<Comparison>, ScimError> {
    let tokens = tokenize(filter)?;
    let mut rest = tokens.as_slice();
    let mut comparisons = Vec::new();
    loop {
        let (comparison, after) = comparison(rest, resource)?;
        comparisons.push(comparison);
        rest = match after {
            [] => return Ok(comparisons),
            [Token::Word(and), after @ ..] if and.eq_ignore_ascii_case("and") => after,
            [Token::Word(word), ..] => {
                return Err(ScimError::invalid_filter(format!(
                    "`{word}` is not supported: only `eq` comparisons joined by `and` are"
                )));
            }
            _ => {
                return Err(ScimError::invalid_filter(
                    "unexpected text after a comparison",
                ));
            }
        };
    }
}

/// One `attr eq "value"` (or `multi[sub eq "value"]`) at the start of `tokens`.
fn comparison(tokens: &[Token], resource: Resource) -> Result<(Comparison, &[Token]), ScimError> {
    let unsupported = || {
        ScimError::invalid_filter(
            "only `attribute eq \"value\"` comparisons joined by `and` are supported",
        )
    };
    let (path, value, rest) = match tokens {
        [
            Token::Word(attr),
            Token::Open,
            Token::Word(sub),
            Token::Word(op),
            Token::Str(value),
            Token::Close,
            rest @ ..,
        ] if op.eq_ignore_ascii_case("eq") => (
            format!("{}.{}", normalise(attr), normalise(sub)),
            value,
            rest,
        ),
        [
            Token::Word(attr),
            Token::Word(op),
            Token::Str(value),
            rest @ ..,
        ] if op.eq_ignore_ascii_case("eq") => (normalise(attr), value, rest),
        _ => return Err(unsupported()),
    };
    let attr = match (resource, path.as_str()) {
        (_, "id") => Attr::Id,
        (_, "externalid") => Attr::ExternalId,
        (_, "displayname") => Attr::DisplayName,
        (Resource::User, "username") => Attr::UserName,
        (Resource::User, "emails.value") => Attr::Email,
        (Resource::Group, "members.value") => Attr::MemberValue,
        _ => {
            return Err(ScimError::invalid_filter(format!(
                "filtering on `{path}` is not supported"
            )));
        }
    };
    Ok((
        Comparison {
            attr,
            value: value.clone(),
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(attr: Attr, value: &str) -> Comparison {
        Comparison {
            attr,
            value: value.into(),
        }
    }

    #[test]
    fn the_filters_identity_providers_send_are_understood() {
        let user = |f| parse(f, Resource::User).unwrap();
        assert_eq!(
            user("userName eq \"a@b.c\""),
            [one(Attr::UserName, "a@b.c")]
        );
        assert_eq!(
            user("USERNAME EQ \"a@b.c\""),
            [one(Attr::UserName, "a@b.c")]
        );
        assert_eq!(
            user("externalId eq \"00u1\""),
            [one(Attr::ExternalId, "00u1")]
        );
        assert_eq!(
            user("emails[value eq \"a@b.c\"]"),
            [one(Attr::Email, "a@b.c")]
        );
        assert_eq!(
            user("emails.value eq \"a@b.c\""),
            [one(Attr::Email, "a@b.c")]
        );
        assert_eq!(
            user("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"x\" and id eq \"y\""),
            [one(Attr::UserName, "x"), one(Attr::Id, "y")]
        );
        assert_eq!(
            user("userName eq \"q\\\"uote\""),
            [one(Attr::UserName, "q\"uote")]
        );
        let group = parse("displayName eq \"App Admins\"", Resource::Group).unwrap();
        assert_eq!(group, [one(Attr::DisplayName, "App Admins")]);
    }

    #[test]
    fn anything_else_is_an_invalid_filter() {
        for filter in [
            "",
            "userName",
            "userName co \"a\"",
            "userName eq a",
            "userName eq \"a\" or id eq \"b\"",
            "(userName eq \"a\")",
            "userName eq \"a",
            "password eq \"x\"",
            "members.value eq \"x\"",
            "userName eq \"a\" and",
            "emails[type eq \"work\"]",
            &"a".repeat(2000),
        ] {
            let error = parse(filter, Resource::User).unwrap_err();
            assert_eq!(error.scim_type, Some("invalidFilter"), "{filter}");
        }
    }
}
