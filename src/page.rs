//! What every page shares: its frame (who is signed in, the one-shot message), rendering with a
//! status, redirects, how times read, and the security headers. A leaf: it imports nothing of
//! routes, auth or errors, so all of them can use it.

use actix_web::{
    HttpRequest, HttpResponse, http::StatusCode, http::header, middleware::DefaultHeaders,
};

use crate::{
    db::ids::{AccountState, SessionId},
    flash::Flash,
};

/// The signed-in user as the page layout shows them.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub email: String,
    pub is_admin: bool,
    /// Names the page's live-logout worker, so each session gets its own.
    pub session_id: SessionId,
}

/// What `base.html` needs of every page: the header's user and the message to show once.
#[derive(Clone, Debug)]
pub struct Frame {
    pub viewer: Option<Viewer>,
    pub flash: Option<Flash>,
}

impl Frame {
    /// The frame of a page for `viewer` (anonymous with `None`), with the request's message.
    pub fn new(req: &HttpRequest, viewer: Option<Viewer>) -> Frame {
        Frame {
            viewer,
            flash: Flash::from_request(req),
        }
    }

    /// The same frame without the message (a page that has its own, or shows a secret once).
    pub fn without_flash(viewer: Option<Viewer>) -> Frame {
        Frame {
            viewer,
            flash: None,
        }
    }
}

/// Room a page is rendered into at first: the todo list with 20 items fits, so the common pages
/// render without the buffer growing (and being copied) on the way.
const PAGE_BUFFER: usize = 16 * 1024;

/// A rendered page with the given status.
pub fn render<T: askama::Template>(page: &T, status: StatusCode) -> HttpResponse {
    let mut html = String::with_capacity(PAGE_BUFFER.max(T::SIZE_HINT));
    match page.render_into(&mut html) {
        Ok(()) => HttpResponse::build(status)
            .insert_header(header::ContentType::html())
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            HttpResponse::InternalServerError()
                .insert_header(header::ContentType::plaintext())
                .body("This page could not be shown. Please try again.")
        }
    }
}

/// A plain 303 redirect.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A time as pages show it: `2026-11-25 16:57 UTC`.
pub fn format_time(at: &time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// How a user's state reads on the dashboard's badge.
pub fn state_label(state: AccountState) -> &'static str {
    match state {
        AccountState::Active => "Active",
        AccountState::Suspended => "Suspended",
        AccountState::Deleted => "Deleted",
    }
}

/// A user's last state change as the dashboard says it: "Suspended by SCIM provisioning
/// (scim_AbCd1234) · 2026-12-07 05:44 UTC". `by` is the user's `state_changed_by`.
pub fn state_change(state: AccountState, by: &str, at: &time::OffsetDateTime) -> String {
    let what = match state {
        AccountState::Active => "Reactivated",
        other => state_label(other),
    };
    format!("{what} by {by} · {}", format_time(at))
}

/// Why a session ended, in words, by reason (`?reason=` of the sign-in page, the `logout`
/// event a tab receives): the one place these sentences live.
pub fn sign_out_reason(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "signed_out" => "You signed out.",
        "signed_out_sso" => {
            "You signed out. You may still be signed in at your organisation's identity provider."
        }
        "idp_expiry" => "Your organisation's sign-in has expired. Please sign in again.",
        "reauth" => "Your organisation asks you to sign in again to go on.",
        "ual" => "You were signed out by your organisation's identity provider.",
        "backchannel" => {
            "You were signed out because you signed out at your organisation's sign-in service."
        }
        "admin" => "An administrator of your organisation signed you out.",
        "self" => "You signed out on another device or tab.",
        "self_device" => "You signed out this device from another one.",
        "scim" => "You were signed out by your organisation's provisioning service.",
        "operator" | "cli" => "An operator of this service signed you out.",
        "caep" | "risc" => "You were signed out by your organisation's security signals.",
        "suspended" => "Your account was suspended by your organisation.",
        "expired" => "Your session has ended. Please sign in again.",
        "revoked" => "You were signed out. Please sign in again.",
        _ => return None,
    })
}

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";
/// The same policy without `form-action`, for the sign-in page (see `routes::auth::login`).
pub const CSP_WITHOUT_FORM_ACTION: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Headers on every response; a handler's own value wins (static files set their own caching).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"))
}
