//! Paging through the admin lists (users, audit log).

use crate::error::AppError;

/// The page a list was asked for (1 when none was): 400 unless 1 to 1,000,000.
pub fn page_number(requested: Option<i64>) -> Result<i64, AppError> {
    let page = requested.unwrap_or(1);
    if (1..=1_000_000).contains(&page) {
        Ok(page)
    } else {
        Err(AppError::BadRequest(
            "The page number must be 1 or more.".into(),
        ))
    }
}

/// The query string of page `page` of a list, keeping its non-empty filters.
pub fn page_link(filters: &[(&str, &str)], page: i64) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        pairs.append_pair(name, value);
    }
    pairs.append_pair("page", &page.to_string());
    pairs.finish()
}
