//! What SCIM handlers share: reading a JSON body within bounds, the query, and answering in
//! `application/scim+json` with `ETag` and `Location`.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError as _,
    http::{StatusCode, header},
    web,
};
use futures_util::StreamExt as _;
use serde_json::Value;

use crate::{
    config::PublicUrl,
    scim::{
        error::ScimError,
        etag::etag,
        limits::{CONTENT_TYPE, MAX_BODY_BYTES},
        list::ListQuery,
        resource::BASE_PATH,
    },
};

/// The absolute URL of the SCIM endpoints.
pub fn base(public_url: &PublicUrl) -> String {
    public_url.join(BASE_PATH)
}

/// The request's query; unknown parameters are ignored.
pub fn query(req: &HttpRequest) -> Result<ListQuery, ScimError> {
    web::Query::<ListQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ScimError::invalid_value(format!("the query cannot be read: {e}")))
}

/// The JSON body, sent as `application/scim+json` or `application/json`, of at most
/// [`MAX_BODY_BYTES`] (larger is refused before it is read in full).
pub async fn json_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Value, ScimError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !(essence.eq_ignore_ascii_case(CONTENT_TYPE)
        || essence.eq_ignore_ascii_case("application/json"))
    {
        return Err(ScimError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "send the body as application/scim+json",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ScimError::too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ScimError::invalid_syntax(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ScimError::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

/// A SCIM resource (or document) answered with `status`, and its `ETag` when it has a version.
pub fn resource(status: StatusCode, body: &Value, version: Option<i64>) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .content_type(CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(version) = version {
        response.insert_header((header::ETAG, etag(version)));
    }
    if status == StatusCode::CREATED
        && let Some(location) = body["meta"]["location"].as_str()
    {
        response.insert_header((header::LOCATION, location));
    }
    response.body(body.to_string())
}

/// A list or discovery document.
pub fn document(body: &Value) -> HttpResponse {
    resource(StatusCode::OK, body, None)
}

/// 404 for routes and methods SCIM does not have.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ScimError::not_found(format!(
        "there is no SCIM endpoint {} {}",
        req.method(),
        crate::telemetry::clip(req.path())
    ))
    .error_response()
}

/// 405 for a method a SCIM endpoint does not answer.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        format!("{} is not allowed here", req.method()),
    )
    .error_response()
}
