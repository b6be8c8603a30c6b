//! SCIM tokens on `/admin/keys`: the credential the org's IdP provisions users with, issued (shown
//! once) and revoked by the org's admins, as `ual-todo scim-token` does for operators.

use actix_web::{HttpRequest, HttpResponse, web};

use super::keys::{NewSecret, render};
use crate::{
    auth::AdminUser,
    db::{Pool, models::ScimToken},
    error::AppError,
    flash::{self, Flash},
    secret_token,
};

/// `POST /admin/scim-tokens`: issues a SCIM token, shown in this response only.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn create(
    req: HttpRequest,
    admin: AdminUser,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let issued = {
        let mut conn = pool.get().await?;
        ScimToken::create(&mut conn, admin.0.org_id).await?.1
    };
    tracing::info!(org_id = %admin.0.org_id, prefix = %issued.prefix, "issued a SCIM token");
    let token = secret_token::reveal(&issued).to_owned();
    render(&req, &admin, &pool, Some(NewSecret::ScimToken(token))).await
}

/// `POST /admin/scim-tokens/{prefix}/revoke`.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn revoke(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let token = ScimToken::revoke(&mut conn, admin.0.org_id, &path)
        .await?
        .ok_or_else(|| {
            AppError::NotFound("Your organisation has no live SCIM token with that prefix.".into())
        })?;
    let message = format!(
        "SCIM token {} revoked: your identity provider can no longer provision with it.",
        token.prefix
    );
    Ok(flash::redirect(&req, "/admin/keys", Flash::info(message)))
}
