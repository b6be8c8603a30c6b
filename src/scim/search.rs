//! Search requests (RFC 7644 §3.4.3): a query sent as a `SearchRequest` body to `/.search`
//! rather than in the URL, read into the same [`ListQuery`] as a URL's.

use serde_json::Value;

use super::{error::ScimError, limits::MAX_FILTER, list::ListQuery, patch::field};

/// The schema URN of a search request.
pub const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Most attribute names in `attributes` or `excludedAttributes`.
const MAX_ATTRIBUTES: usize = 50;

/// The query a `SearchRequest` body carries, as if it had come in the URL.
pub fn query(body: &Value) -> Result<ListQuery, ScimError> {
    let body = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest is a JSON object"))?;
    if let Some(schemas) = field(body, "schemas") {
        let named = schemas
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(SEARCH_SCHEMA)));
        if !named {
            return Err(ScimError::invalid_syntax(format!(
                "`schemas` must name {SEARCH_SCHEMA}"
            )));
        }
    }
    let text = |name: &str| match field(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_FILTER => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::invalid_value(format!(
            "`{name}` must be a string of at most {MAX_FILTER} bytes"
        ))),
    };
    let number = |name: &str| match field(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ScimError::invalid_value(format!(
            "`{name}` must be an integer"
        ))),
    };
    let names = |name: &str| match field(body, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) if list.len() <= MAX_ATTRIBUTES => list
            .iter()
            .map(|a| {
                a.as_str()
                    .filter(|a| a.len() <= 256 && !a.contains(','))
                    .ok_or_else(|| {
                        ScimError::invalid_value(format!("`{name}` lists attribute names"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|list| Some(list.join(","))),
        Some(_) => Err(ScimError::invalid_value(format!(
            "`{name}` is a list of at most {MAX_ATTRIBUTES} attribute names"
        ))),
    };
    let query = ListQuery {
        filter: text("filter")?,
        start_index: number("startIndex")?,
        count: number("count")?,
        attributes: names("attributes")?,
        excluded_attributes: names("excludedAttributes")?,
    };
    if query.attributes.is_some() && query.excluded_attributes.is_some() {
        return Err(ScimError::invalid_value(
            "`attributes` and `excludedAttributes` exclude each other",
        ));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_search_request_reads_as_the_same_query_as_a_url() {
        let q = query(&json!({
            "schemas": [SEARCH_SCHEMA],
            "filter": "userName eq \"a\"",
            "startIndex": 2,
            "count": 5,
            "attributes": ["userName", "name.givenName"],
        }))
        .unwrap();
        assert_eq!(q.filter.as_deref(), Some("userName eq \"a\""));
        assert_eq!(q.start_index.as_deref(), Some("2"));
        assert_eq!(q.count.as_deref(), Some("5"));
        assert_eq!(q.attributes.as_deref(), Some("userName,name.givenName"));
        for bad in [
            json!([]),
            json!({"schemas": ["urn:x"]}),
            json!({"filter": 7}),
            json!({"count": "many"}),
            json!({"attributes": "userName"}),
            json!({"attributes": ["a"], "excludedAttributes": ["b"]}),
            json!({"filter": "x".repeat(MAX_FILTER + 1)}),
        ] {
            assert!(query(&bad).is_err(), "{bad}");
        }
    }
}
