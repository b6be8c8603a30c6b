//! Logging. Request lines carry method, path, status and request id: never a query string (it
//! may hold an authorization code), a header, a cookie or a body. What a client chose (method,
//! path) is clipped to [`MAX_CLIENT_TEXT`] bytes, so nobody can write megabytes into the logs.

use actix_web::{
    Error, HttpMessage as _,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
};
use std::{borrow::Cow, io::IsTerminal as _};

use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// Log targets held at `info` whatever `RUST_LOG` says, because their debug output contains
/// secrets: tokio-postgres logs every statement's parameters (PKCE verifiers, hashes).
const NEVER_VERBOSE: &[&str] = &["tokio_postgres=info"];

/// The most bytes of any client-supplied string a log line carries.
const MAX_CLIENT_TEXT: usize = 256;

/// `text` cut to [`MAX_CLIENT_TEXT`] bytes (on a character boundary), marked `…` when cut.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_CLIENT_TEXT {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_CLIENT_TEXT - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// Installs the global subscriber; `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    for directive in NEVER_VERBOSE {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The span around each request.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %clip(request.method().as_str()),
            path = %clip(request.path()),
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("status", status.as_u16());
        // An error's text may quote the request (a path, a form value): clipped.
        let error = error.map(|e| clip(&e.to_string()).into_owned());
        span.in_scope(|| {
            if status.is_server_error() {
                tracing::warn!(error, "answered with a server error");
            } else if let Some(error) = error {
                tracing::debug!(error, "answered with a client error");
            } else {
                tracing::debug!("answered");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("/todos"), "/todos");
        let long = "é".repeat(1000);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_CLIENT_TEXT);
        assert!(clipped.ends_with('…'));
        assert!(clipped.starts_with("éé"));
    }
}
