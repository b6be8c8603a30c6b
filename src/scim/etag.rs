//! Resource versions as weak ETags (`W/"7"`) and the `If-Match` precondition.

use actix_web::{HttpRequest, http::header};

use super::error::ScimError;

/// The ETag of version `version`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A request's `If-Match` precondition, read before the transaction that checks it.
#[derive(Clone, Debug, Default)]
pub struct IfMatch(Option<String>);

impl IfMatch {
    pub fn of(req: &HttpRequest) -> IfMatch {
        IfMatch(
            req.headers()
                .get(header::IF_MATCH)
                .map(|v| v.to_str().unwrap_or("\u{0}").to_owned()),
        )
    }

    /// Whether a write to a resource at `version` may go ahead: no `If-Match`, or `*`, or one
    /// of the listed tags names this version (weak compare). Otherwise 412.
    pub fn check(&self, version: i64) -> Result<(), ScimError> {
        match &self.0 {
            Some(value) if !matches_version(value, version) => {
                Err(ScimError::precondition_failed())
            }
            _ => Ok(()),
        }
    }
}

fn matches_version(if_match: &str, version: i64) -> bool {
    let wanted = version.to_string();
    if_match.split(',').map(str::trim).any(|tag| {
        tag == "*" || {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) == Some(wanted.as_str())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_the_current_version_weak_or_strong_and_star() {
        assert!(matches_version("W/\"3\"", 3));
        assert!(matches_version("\"3\"", 3));
        assert!(matches_version("W/\"1\", W/\"3\"", 3));
        assert!(matches_version("*", 3));
        assert!(!matches_version("W/\"2\"", 3));
        assert!(!matches_version("3", 3));
        assert!(!matches_version("", 3));
    }
}
