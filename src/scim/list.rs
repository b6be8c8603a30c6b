//! List requests and responses (RFC 7644 §3.4.2): `filter`, 1-based `startIndex`, `count`
//! (cut to [`MAX_COUNT`]), `attributes` and `excludedAttributes`, answered as a `ListResponse`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ScimError,
    limits::{DEFAULT_COUNT, MAX_COUNT},
};

/// The schema URN of a list response.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The query of a list (or read) request, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// Which slice of the matches to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// 1-based, as SCIM counts.
    pub start_index: i64,
    pub count: i64,
}

impl Page {
    /// The page asked for: a `startIndex` below 1 counts as 1, a negative `count` as 0, and a
    /// `count` above [`MAX_COUNT`] as [`MAX_COUNT`] (RFC 7644 §3.4.2.4).
    pub fn from_query(query: &ListQuery) -> Result<Page, ScimError> {
        let number = |name: &str, text: &Option<String>, default: i64| match text {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| ScimError::invalid_value(format!("`{name}` must be an integer"))),
        };
        Ok(Page {
            start_index: number("startIndex", &query.start_index, 1)?.max(1),
            count: number("count", &query.count, DEFAULT_COUNT)?.clamp(0, MAX_COUNT),
        })
    }

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        self.start_index - 1
    }
}

/// A `ListResponse` of `resources`, the page `page` of `total` matches.
pub fn response(resources: Vec<Value>, total: i64, page: Page) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// Which attributes to return.
#[derive(Clone, Debug, Default)]
pub struct Projection {
    only: Option<Vec<String>>,
    excluded: Vec<String>,
}

/// Attributes always returned (RFC 7643 §7, `returned: always`).
const ALWAYS: &[&str] = &["id", "schemas", "meta"];

impl Projection {
    pub fn from_query(query: &ListQuery) -> Projection {
        let split = |text: &str| {
            text.split(',')
                .map(|a| super::filter::normalise(a.trim()))
                .map(|a| a.split('.').next().unwrap_or_default().to_owned())
                .filter(|a| !a.is_empty())
                .take(50)
                .collect::<Vec<_>>()
        };
        Projection {
            only: query.attributes.as_deref().map(split),
            excluded: query
                .excluded_attributes
                .as_deref()
                .map(split)
                .unwrap_or_default(),
        }
    }

    /// Whether the top-level attribute `name` is returned.
    pub fn includes(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        if ALWAYS.contains(&name.as_str()) {
            return true;
        }
        if self.excluded.contains(&name) {
            return false;
        }
        self.only.as_ref().is_none_or(|only| only.contains(&name))
    }

    /// `resource` with only the returned attributes.
    pub fn apply(&self, mut resource: Value) -> Value {
        if let Value::Object(map) = &mut resource {
            map.retain(|name, _| self.includes(name));
        }
        resource
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(start: Option<&str>, count: Option<&str>) -> ListQuery {
        ListQuery {
            start_index: start.map(Into::into),
            count: count.map(Into::into),
            ..ListQuery::default()
        }
    }

    #[test]
    fn pages_are_one_based_and_capped() {
        let page = |s, c| Page::from_query(&query(s, c)).unwrap();
        assert_eq!(
            page(None, None),
            Page {
                start_index: 1,
                count: DEFAULT_COUNT
            }
        );
        assert_eq!(
            page(Some("0"), Some("-4")),
            Page {
                start_index: 1,
                count: 0
            }
        );
        assert_eq!(page(Some("3"), Some("100000")).count, MAX_COUNT);
        assert_eq!(page(Some("3"), None).offset(), 2);
        assert!(Page::from_query(&query(Some("x"), None)).is_err());
    }

    #[test]
    fn excluded_attributes_are_left_out_but_id_never_is() {
        let projection = Projection::from_query(&ListQuery {
            excluded_attributes: Some("members,id".into()),
            ..ListQuery::default()
        });
        let shown = projection.apply(json!({"id": "1", "members": [], "displayName": "x"}));
        assert_eq!(shown, json!({"id": "1", "displayName": "x"}));
    }
}
