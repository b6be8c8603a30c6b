//! One error type for handlers. Pages get `error.html` (or a redirect to sign in), JSON routes
//! wrap it in [`ApiError`] and get `{"error": …, "error_description": …}`. A 5xx logs its cause
//! and shows none of it.

use crate::telemetry::clip;
use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};
use askama::Template;

/// What went wrong in a request, in words fit for the person who made it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    LoginRequired,
    /// Sign in again at this URL (the user's IdP, through `/auth/oidc/initiate`).
    #[error("Please sign in to continue.")]
    SignInAt(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("The service is briefly unavailable. Please try again in a moment.")]
    Unavailable(#[source] anyhow::Error),
    #[error("Something went wrong on our side. Please try again.")]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    /// The machine-readable code used in JSON bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::LoginRequired | Self::SignInAt(_) | Self::Unauthorized(_) => "invalid_token",
            Self::BadRequest(_) | Self::PayloadTooLarge(_) => "invalid_request",
            Self::Forbidden(_) => "access_denied",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable(_) => "unable_to_complete",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Unexpected(_) => "server_error",
        }
    }

    fn log(&self) {
        match self {
            Self::Unavailable(cause) => {
                tracing::warn!(error = %clip(&format!("{cause:#}")), "database unavailable")
            }
            Self::Unexpected(cause) => {
                tracing::error!(error = %clip(&format!("{cause:#}")), "request failed")
            }
            _ => {}
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => Self::Unavailable(e.into()),
            // PostgreSQL text cannot hold NUL: input that reached a query with one is refused
            // (the statement failed, so nothing was written).
            Error::DatabaseError(_, ref info)
                if info.message().starts_with("invalid byte sequence")
                    && info.message().ends_with("0x00") =>
            {
                Self::BadRequest("text must not contain NUL characters".into())
            }
            e => Self::Unexpected(e.into()),
        }
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for AppError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Unexpected(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

/// The page shown for an error.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub frame: crate::page::Frame,
    pub status: u16,
    pub title: &'a str,
    pub message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::LoginRequired | Self::SignInAt(_) => StatusCode::SEE_OTHER,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        match self {
            Self::LoginRequired => return crate::page::see_other("/login"),
            Self::SignInAt(location) => return crate::page::see_other(location),
            _ => {}
        }
        let status = self.status_code();
        let page = ErrorPage {
            frame: crate::page::Frame::without_flash(None),
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
        };
        let mut response = HttpResponse::build(status);
        if let Self::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        match page.render() {
            Ok(html) => response.content_type("text/html; charset=utf-8").body(html),
            Err(_) => response
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
        }
    }
}

/// An [`AppError`] answered as JSON, for API routes and identity-provider calls.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        Self(e.into())
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for ApiError {
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        Self(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            AppError::LoginRequired => StatusCode::UNAUTHORIZED,
            ref e => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        match &self.0 {
            AppError::LoginRequired | AppError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": self.0.code(),
                "error_description": self.0.to_string(),
            }))
    }
}

impl From<crate::revocation::RevokeError> for AppError {
    fn from(e: crate::revocation::RevokeError) -> Self {
        match e {
            crate::revocation::RevokeError::Replayed => Self::Unauthorized(e.to_string()),
            crate::revocation::RevokeError::Database(e) => e.into(),
        }
    }
}

/// Whether a database error is a unique-constraint violation (a duplicate).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Middleware, outside the session layer of the browser routes: the session store fails only
/// when the database does, and actix-session would answer an opaque 500. Answer 503 instead, so
/// people see what is going on. Nobody is ever signed in by it. (Machine endpoints have no
/// session layer: their own errors answer in JSON.)
pub async fn storage_failures_are_unavailable(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    next.call(req).await.map_err(|e| {
        if e.as_response_error().status_code() != StatusCode::INTERNAL_SERVER_ERROR {
            return e;
        }
        AppError::Unavailable(anyhow::anyhow!("session storage failed: {e}")).into()
    })
}
