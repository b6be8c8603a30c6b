//! Who is asking: password hashing, the signed-in user as an extractor, and cross-site request
//! protection.

pub mod admission;
pub mod csrf;
pub mod fetch_cache;
pub mod idp_http;
pub mod jwks;
pub mod jwt;
pub mod password;
pub mod sso;

use std::future::{Ready, ready};

use actix_identity::IdentityExt as _;
use actix_session::SessionExt as _;
use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use futures_util::future::LocalBoxFuture;

use crate::{
    db::{
        Pool,
        ids::{OrgId, SessionId, UserId},
        models::{AccessToken, User},
    },
    error::{ApiError, AppError},
    page::{Frame, Viewer},
    secret_token::{self, Kind},
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

    /// The frame of a page for this user, with the request's one-shot message.
    pub fn frame(&self, req: &HttpRequest) -> Frame {
        Frame::new(req, Some(self.viewer()))
    }

    /// What the page header shows about the user.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            email: self.email.clone(),
            is_admin: self.is_admin,
            session_id: self.session_id,
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_request_parts(req).ok_or_else(|| login_required(req)))
    }
}

/// The signed cookie naming the IdP a browser last signed in through (its issuer), so that a
/// page asked for after the session ended goes straight back through that IdP.
pub const IDP_HINT_COOKIE: &str = "ual_todo_idp";

/// Where an anonymous request is sent: a page request of a browser that last signed in through
/// an IdP goes back through it (and returns to the page); anything else to the sign-in page.
fn login_required(req: &HttpRequest) -> AppError {
    let Some(issuer) = crate::signed_cookie::CookieSigner::verified(req, IDP_HINT_COOKIE) else {
        return AppError::LoginRequired;
    };
    if req.method() != actix_web::http::Method::GET {
        return AppError::LoginRequired;
    }
    let mut initiate = url::Url::parse("http://app/auth/oidc/initiate").expect("a URL");
    initiate
        .query_pairs_mut()
        .append_pair("iss", &issuer)
        .append_pair("target_link_uri", &req.uri().to_string());
    let query = initiate.query().unwrap_or_default();
    AppError::SignInAt(format!("/auth/oidc/initiate?{query}"))
}

/// A signed-in admin, acting on their own org only. The role is read from the database on every
/// request, so a demoted admin loses access at once; others get 403, anonymous visitors the
/// sign-in page.
#[derive(Clone, Debug)]
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request_parts(req);
        let signed_out = login_required(req);
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            let mut user = user.ok_or(signed_out)?;
            let pool = pool.ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no pool")))?;
            let mut conn = pool.get().await?;
            let row = User::find_in_org(&mut conn, user.org_id, user.id).await?;
            match row {
                Some(row) if row.is_admin && admission::active(&row).is_ok() => {
                    user.is_admin = true;
                    Ok(AdminUser(user))
                }
                _ => Err(AppError::Forbidden(
                    "This page is for your organisation's administrators.".into(),
                )),
            }
        })
    }
}

/// The `Authorization: Bearer` credential of a request.
pub fn bearer(req: &HttpRequest) -> Result<&str, AppError> {
    let unauthorized = |m: &str| AppError::Unauthorized(m.to_owned());
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an Authorization: Bearer credential is required"))?
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not readable"))?;
    match value.split_once(' ') {
        Some((scheme, credential))
            if scheme.eq_ignore_ascii_case("bearer") && !credential.trim().is_empty() =>
        {
            Ok(credential.trim())
        }
        _ => Err(unauthorized("the Authorization scheme must be Bearer")),
    }
}

/// The user of a JSON API request, authenticated by a personal access token.
#[derive(Clone, Debug)]
pub struct ApiUser {
    pub id: UserId,
    pub org_id: OrgId,
}

impl FromRequest for ApiUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let credential = bearer(req).map(str::to_owned);
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            let refused = || AppError::Unauthorized("unknown or revoked access token".into());
            let presented =
                secret_token::parse(Kind::AccessToken, &credential?).ok_or_else(refused)?;
            let pool = pool.ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no pool")))?;
            let mut conn = pool.get().await?;
            let (token, org_id) = AccessToken::authenticate(&mut conn, &presented)
                .await?
                .ok_or_else(refused)?;
            Ok(Self {
                id: token.user_id,
                org_id,
            })
        })
    }
}
