//! One-shot messages shown on the page after a redirect ("Todo deleted."). They travel in a
//! short-lived signed cookie, so showing one costs no session write.

use actix_web::{
    Error, HttpRequest, HttpResponse,
    body::MessageBody,
    cookie::time::Duration,
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};
use serde::{Deserialize, Serialize};

use crate::signed_cookie::{self, CookieSigner};

const COOKIE: &str = "flash";

/// How a message looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Error,
}

/// A message for the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub level: Level,
    pub message: String,
}

impl Level {
    /// The CSS modifier for the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Error => "error",
        }
    }
}

impl Flash {
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    pub fn info(message: impl Into<String>) -> Self {
        Self {
            level: Level::Info,
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            level: Level::Error,
            message: message.into(),
        }
    }

    /// The message the request carries, if any, and if its signature is good.
    pub fn from_request(req: &HttpRequest) -> Option<Flash> {
        serde_json::from_str(&CookieSigner::verified(req, COOKIE)?).ok()
    }
}

/// A 303 redirect to `location` that carries `flash` to the next page.
pub fn redirect(req: &HttpRequest, location: &str, flash: Flash) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, location));
    if let Some(signer) = req.app_data::<web::Data<CookieSigner>>() {
        let value = serde_json::to_string(&flash).expect("a Flash always serializes");
        response.cookie(signer.sign(COOKIE, value, "/", Duration::minutes(1)));
    }
    response.finish()
}

/// Middleware: once a page (anything but a redirect) has been answered, the message is spent.
pub async fn clear_shown(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let had_flash = req.cookie(COOKIE).is_some();
    let mut response = next.call(req).await?;
    if had_flash && !response.status().is_redirection() {
        response
            .response_mut()
            .add_cookie(&signed_cookie::removal(COOKIE, "/"))?;
    }
    Ok(response)
}
