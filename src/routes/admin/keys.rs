//! `/admin/keys`: the org's Universal Logout API keys, SCIM tokens, identity-provider settings
//! and Shared Signals stream (its card and forms in [`super::ssf`]).

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::ssf::SsfCard;
use crate::{
    auth::{AdminUser, idp_http::IdpHttp},
    config::PublicUrl,
    db::{
        Pool,
        models::{Org, OrgApiKey, ScimToken, org::IdpSettings},
    },
    error::{AppError, is_unique_violation},
    flash::{self, Flash},
    page::{self, Frame},
    secret_box::SecretBox,
    secret_token,
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    pub frame: Frame,
    /// Which admin tab is current.
    pub section: &'static str,
    pub org: Org,
    pub keys: Vec<OrgApiKey>,
    /// A key just created: shown this once.
    pub new_key: Option<String>,
    /// The org's long-lived SCIM tokens.
    pub scim_tokens: Vec<ScimToken>,
    /// A SCIM token just created: shown this once.
    pub new_scim_token: Option<String>,
    pub endpoint: String,
    pub scim_base: String,
    pub redirect_uri: String,
    pub initiate_uri: String,
    pub post_logout_uri: String,
    pub backchannel_uri: String,
    /// The org's Shared Signals stream.
    pub ssf: SsfCard,
}

/// A secret just issued, shown on the page this once.
pub enum NewSecret {
    ApiKey(String),
    ScimToken(String),
}

pub async fn render(
    req: &HttpRequest,
    admin: &AdminUser,
    pool: &Pool,
    new_secret: Option<NewSecret>,
) -> Result<HttpResponse, AppError> {
    let (org, keys, scim_tokens) = {
        let mut conn = pool.get().await?;
        let org = Org::find(&mut conn, admin.0.org_id)
            .await?
            .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
        let keys = OrgApiKey::list_for_org(&mut conn, org.id).await?;
        let scim_tokens = ScimToken::list_for_org(&mut conn, org.id).await?;
        (org, keys, scim_tokens)
    };
    let ssf = SsfCard::load(req, pool, org.id).await?;
    let url = |path: &str| {
        req.app_data::<web::Data<PublicUrl>>()
            .map(|u| u.join(path))
            .unwrap_or_default()
    };
    let keys_page = KeysPage {
        // The page that shows a new key once carries no other message.
        frame: if new_secret.is_some() {
            Frame::without_flash(Some(admin.0.viewer()))
        } else {
            admin.0.frame(req)
        },
        section: "keys",
        org,
        keys,
        scim_tokens,
        new_key: match &new_secret {
            Some(NewSecret::ApiKey(key)) => Some(key.clone()),
            _ => None,
        },
        new_scim_token: match new_secret {
            Some(NewSecret::ScimToken(token)) => Some(token),
            _ => None,
        },
        endpoint: url(crate::routes::global_token_revocation::PATH),
        scim_base: url("/scim/v2"),
        redirect_uri: url(crate::routes::auth::CALLBACK),
        initiate_uri: url("/auth/oidc/initiate"),
        post_logout_uri: url(crate::routes::auth::POST_LOGOUT_PATH),
        backchannel_uri: url(crate::routes::backchannel_logout::PATH),
        ssf,
    };
    let mut response = page::render(&keys_page, StatusCode::OK);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `GET /admin/keys`.
pub async fn keys(
    req: HttpRequest,
    admin: AdminUser,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    render(&req, &admin, &pool, None).await
}

/// `POST /admin/keys`: issues a key, shown in this response only.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn create(
    req: HttpRequest,
    admin: AdminUser,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let issued = {
        let mut conn = pool.get().await?;
        OrgApiKey::create(&mut conn, admin.0.org_id).await?.1
    };
    tracing::info!(org_id = %admin.0.org_id, prefix = %issued.prefix, "issued a Universal Logout API key");
    render(
        &req,
        &admin,
        &pool,
        Some(NewSecret::ApiKey(secret_token::reveal(&issued).to_owned())),
    )
    .await
}

/// `POST /admin/keys/{prefix}/revoke`.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn revoke(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let key = OrgApiKey::revoke(&mut conn, admin.0.org_id, &path)
        .await?
        .ok_or_else(|| {
            AppError::NotFound("Your organisation has no live key with that prefix.".into())
        })?;
    let message = format!(
        "Key {} revoked: it can no longer call Universal Logout.",
        key.prefix
    );
    Ok(flash::redirect(&req, "/admin/keys", Flash::info(message)))
}

/// The IdP form. There is no email domain: only the operator assigns one (`org set-idp
/// --email-domain`), since a domain routes SSO sign-ins and any org could claim another's; a
/// posted `email_domain` is ignored.
#[derive(Deserialize)]
pub struct IdpForm {
    issuer: String,
    client_id: String,
    #[serde(default)]
    client_secret: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    create_users: Option<String>,
}

/// `POST /admin/idp`: sets the org's IdP and single sign-on, or clears them (issuer and client
/// id both empty). A blank secret keeps the stored one (it is never shown again), unless the
/// issuer or client id changes: then the stored secret is dropped, so it can never be sent to
/// another issuer, and SSO stays off until the new secret is given.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn set_idp(
    req: HttpRequest,
    admin: AdminUser,
    form: web::Form<IdpForm>,
    pool: web::Data<Pool>,
    secrets: web::Data<SecretBox>,
    http: web::Data<IdpHttp>,
) -> Result<HttpResponse, AppError> {
    let refuse = |message: &str| Ok(flash::redirect(&req, "/admin/keys", Flash::error(message)));
    let (issuer, client_id) = (
        form.issuer.trim().trim_end_matches('/'),
        form.client_id.trim(),
    );
    let mut conn = pool.get().await?;
    if issuer.is_empty() && client_id.is_empty() {
        Org::set_idp(&mut conn, admin.0.org_id, None).await?;
        return Ok(flash::redirect(
            &req,
            "/admin/keys",
            Flash::info("Identity provider removed."),
        ));
    }
    if issuer.is_empty() || client_id.is_empty() {
        return refuse("Give both the issuer and the client id, or clear both.");
    }
    let idp = IdpSettings {
        issuer,
        client_id,
        client_secret: Some(form.client_secret.trim()).filter(|s| !s.is_empty()),
        email_domain: None,
        create_users: form.create_users.is_some(),
    };
    if let Err(message) = idp.check(http.policy()) {
        return refuse(&message);
    }
    let configured = match Org::configure_idp(&mut conn, admin.0.org_id, &idp, &secrets).await {
        Ok(configured) => configured,
        Err(e) if is_unique_violation(&e) => {
            return refuse("Another organisation already uses this issuer and client id.");
        }
        Err(e) => return Err(e.into()),
    };
    let message = if configured.secret_dropped {
        "Identity provider saved. Its issuer or client id changed, so the stored client secret \
         was removed: single sign-on is off until you give the new client secret."
    } else {
        "Identity provider saved: its signed JWTs may call Universal Logout, and SSO uses it."
    };
    Ok(flash::redirect(&req, "/admin/keys", Flash::info(message)))
}
