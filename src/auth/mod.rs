//! Who is asking: password hashing, the signed-in user as an extractor, and cross-site request
//! protection.

pub mod csrf;
pub mod password;

use actix_identity::IdentityExt as _;
use actix_session::SessionExt as _;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use std::future::{Ready, ready};

use crate::{
    db::ids::{OrgId, SessionId, UserId},
    error::AppError,
    session_store::{META_KEY, SessionMeta},
};

/// The signed-in user of a request. Asking for it is what makes a page private: an anonymous
/// (or revoked) request is sent to the sign-in page instead.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: UserId,
    pub org_id: OrgId,
    pub session_id: SessionId,
    pub email: String,
    pub is_admin: bool,
}

impl CurrentUser {
    fn from_request_parts(req: &HttpRequest) -> Option<Self> {
        let id = req.get_identity().ok()?.id().ok()?.parse().ok()?;
        let meta: SessionMeta = req.get_session().get(META_KEY).ok()??;
        Some(Self {
            id,
            org_id: meta.org_id,
            session_id: meta.id,
            email: meta.email,
            is_admin: meta.is_admin,
        })
    }

    /// What the page header shows about the user.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            email: self.email.clone(),
            is_admin: self.is_admin,
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_request_parts(req).ok_or(AppError::LoginRequired))
    }
}

/// The signed-in user as the page layout shows them.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub email: String,
    pub is_admin: bool,
}
