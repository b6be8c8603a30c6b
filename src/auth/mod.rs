//! Who is asking: password hashing, the signed-in user as an extractor, and cross-site request
//! protection.

pub mod csrf;
pub mod jwks;
pub mod jwt;
pub mod oidc;
pub mod password;

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
    secret_token::{self, Kind},
    session_store::{META_KEY, SessionMeta},
};

/// The HTTP client for calls to identity providers (discovery, keys, token exchange): bounded
/// by `timeout`, and it never follows a redirect, which could point anywhere.
pub fn idp_client(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ual-todo/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS backend is compiled in")
}

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
            session_id: self.session_id,
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
    /// Names the page's live-logout worker, so each session gets its own.
    pub session_id: SessionId,
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
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            let mut user = user.ok_or(AppError::LoginRequired)?;
            let pool = pool.ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no pool")))?;
            let mut conn = pool.get().await?;
            let row = User::find_in_org(&mut conn, user.org_id, user.id).await?;
            match row {
                Some(row) if row.is_admin => {
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

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    /// A redirect from a discovery or keys URL is an error, never a request elsewhere.
    #[tokio::test]
    async fn the_idp_client_never_follows_a_redirect() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            stream
                .write_all(
                    b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\
                      Connection: close\r\n\r\n",
                )
                .unwrap();
        });

        let answer = super::idp_client(std::time::Duration::from_secs(5))
            .get(format!("http://{addr}/jwks"))
            .send()
            .await
            .expect("one request, answered");

        assert_eq!(answer.status(), reqwest::StatusCode::FOUND);
        assert_eq!(answer.url().path(), "/jwks", "not followed");
        server.join().unwrap();
    }
}
