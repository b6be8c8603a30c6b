//! Cross-site request forgery protection by Fetch Metadata and `Origin`, the algorithm of Go's
//! `http.CrossOriginProtection`: a state-changing request from a browser must come from this
//! origin. It needs no per-session token, so it also covers the sign-in form (login CSRF) and
//! costs no session write. Requests without either header do not come from a browser that could
//! be tricked into sending them.

use actix_web::{
    Error, ResponseError as _,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, header::HeaderMap},
    middleware::Next,
    web,
};

use crate::{config::PublicUrl, error::AppError};

/// Methods that change nothing: always allowed.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a request may go on.
pub fn allows(method: &Method, headers: &HeaderMap, public_origin: &str) -> bool {
    if is_safe(method) {
        return true;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            origin == public_origin
                || header("host").is_some_and(|host| {
                    origin
                        .strip_prefix("http://")
                        .or_else(|| origin.strip_prefix("https://"))
                        == Some(host)
                })
        }
    }
}

/// Middleware: refuses cross-origin state-changing requests with 403.
pub async fn reject_cross_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // Safe methods never need the origin; it is built only for the others.
    let origin = if is_safe(req.method()) {
        String::new()
    } else {
        req.app_data::<web::Data<PublicUrl>>()
            .map(|u| u.origin())
            .unwrap_or_default()
    };
    if allows(req.method(), req.headers(), &origin) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    tracing::warn!(
        path = %crate::telemetry::clip(req.path()),
        "refused a cross-origin request"
    );
    let refusal = AppError::Forbidden(
        "This form was sent from another site, so it was refused. Go back, reload the page and try again."
            .into(),
    )
    .error_response();
    Ok(req.into_response(refusal).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    const ME: &str = "http://127.0.0.1:8080";

    #[test]
    fn safe_methods_always_pass() {
        assert!(allows(
            &Method::GET,
            &headers(&[("sec-fetch-site", "cross-site")]),
            ME
        ));
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(allows(
            &Method::POST,
            &headers(&[("sec-fetch-site", "same-origin")]),
            ME
        ));
        assert!(allows(
            &Method::POST,
            &headers(&[("sec-fetch-site", "none")]),
            ME
        ));
        assert!(!allows(
            &Method::POST,
            &headers(&[("sec-fetch-site", "cross-site")]),
            ME
        ));
        assert!(!allows(
            &Method::POST,
            &headers(&[("sec-fetch-site", "same-site")]),
            ME
        ));
        // A trusted-looking Origin cannot override what the browser said.
        assert!(!allows(
            &Method::POST,
            &headers(&[("sec-fetch-site", "cross-site"), ("origin", ME)]),
            ME
        ));
    }

    #[test]
    fn origin_decides_without_fetch_metadata() {
        assert!(allows(&Method::POST, &headers(&[("origin", ME)]), ME));
        assert!(allows(
            &Method::POST,
            &headers(&[("origin", "https://todo.example"), ("host", "todo.example")]),
            ME
        ));
        assert!(!allows(
            &Method::POST,
            &headers(&[("origin", "https://evil.example")]),
            ME
        ));
        assert!(!allows(&Method::POST, &headers(&[("origin", "null")]), ME));
    }

    #[test]
    fn requests_without_browser_headers_pass() {
        assert!(allows(&Method::POST, &HeaderMap::new(), ME));
    }
}
