//! Errors of the push endpoint in RFC 8935's format: `{"err": …, "description": …}`, 400 for a
//! refused SET, 401 (with `WWW-Authenticate`) for a missing or unknown authorization header.

use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};

use crate::{error::AppError, ssf::set::Code};

/// A refusal of a pushed SET.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// 400 with an RFC 8935 code.
    #[error("{1}")]
    Refused(Code, String),
    /// 401: the authorization header does not name a stream.
    #[error("{0}")]
    Unauthorized(String),
    /// 413: the body is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 503: try again later (the transmitter retries).
    #[error("{0}")]
    Unavailable(String),
    /// 429: this address failed to authenticate too often.
    #[error("too many failed authentications from this address; retry later")]
    TooMany(std::time::Duration),
}

impl PushError {
    pub fn invalid(why: impl Into<String>) -> Self {
        Self::Refused(Code::InvalidRequest, why.into())
    }
}

impl From<AppError> for PushError {
    fn from(e: AppError) -> Self {
        e.log();
        match e {
            AppError::BadRequest(why) => Self::invalid(why),
            AppError::PayloadTooLarge(why) => Self::TooLarge(why),
            AppError::Unauthorized(why) => Self::Unauthorized(why),
            AppError::Forbidden(why) => Self::Refused(Code::AccessDenied, why),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for PushError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::from(e).into()
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for PushError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        AppError::from(e).into()
    }
}

impl ResponseError for PushError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Refused(..) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            Self::Refused(code, _) => code.as_str(),
            Self::Unauthorized(_) => "authentication_failed",
            Self::TooLarge(_) => "invalid_request",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::TooMany(_) => "too_many_requests",
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::TooMany(wait) => {
                response.insert_header((header::RETRY_AFTER, crate::rate_limit::seconds(*wait)));
            }
            _ => {}
        }
        response.json(serde_json::json!({ "err": code, "description": self.to_string() }))
    }
}
