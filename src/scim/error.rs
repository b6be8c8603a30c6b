//! SCIM errors (RFC 7644 §3.12): `{"schemas": [Error], "status": "400", "scimType": …,
//! "detail": …}` as `application/scim+json`. A 5xx logs its cause and shows none of it.

use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};
use serde_json::json;

use super::limits::CONTENT_TYPE;
use crate::{error::AppError, telemetry::clip};

/// The schema URN of an error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// What went wrong in a SCIM request.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub status: StatusCode,
    /// RFC 7644's `scimType` (400 and 409 only).
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// Seconds to wait, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), detail)
    }

    /// 400 `invalidSyntax`: the body is not the JSON expected.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("noTarget"), detail)
    }

    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("mutability"), detail)
    }

    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    /// 412: the resource changed since the version the client holds.
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            "the resource has changed (If-Match); fetch it again",
        )
    }

    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!(
                "the body is larger than {} bytes",
                super::limits::MAX_BODY_BYTES
            ),
        )
    }

    /// 429, to retry after `seconds`.
    pub fn too_many(seconds: u64) -> Self {
        ScimError {
            retry_after: Some(seconds.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "too many SCIM requests for this organisation; retry later",
            )
        }
    }

    /// The error body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_str(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = scim_type.into();
        }
        body
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type(CONTENT_TYPE)
            .body(self.body().to_string())
    }
}

impl From<AppError> for ScimError {
    fn from(e: AppError) -> Self {
        let status = e.status_code();
        let detail = e.to_string();
        match e {
            AppError::BadRequest(_) => Self::invalid_value(detail),
            AppError::LoginRequired | AppError::Unauthorized(_) => Self::unauthorized(detail),
            AppError::Unavailable(cause) => {
                tracing::warn!(error = %clip(&format!("{cause:#}")), "database unavailable");
                ScimError {
                    retry_after: Some(5),
                    ..Self::new(status, None, detail)
                }
            }
            AppError::Unexpected(cause) => {
                tracing::error!(error = %clip(&format!("{cause:#}")), "SCIM request failed");
                Self::new(status, None, detail)
            }
            _ => Self::new(status, None, detail),
        }
    }
}

impl From<diesel::result::Error> for ScimError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::from(e).into()
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for ScimError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        AppError::from(e).into()
    }
}

impl From<crate::revocation::RevokeError> for ScimError {
    fn from(e: crate::revocation::RevokeError) -> Self {
        AppError::from(e).into()
    }
}

impl From<crate::revocation::RoleError> for ScimError {
    fn from(e: crate::revocation::RoleError) -> Self {
        match e {
            crate::revocation::RoleError::LastAdmin(_) => {
                Self::new(StatusCode::CONFLICT, None, e.to_string())
            }
            crate::revocation::RoleError::Database(e) => e.into(),
        }
    }
}
