//! What an admin changes of a user from the dashboard: the admin role, the account's state
//! (suspend, reactivate) and break-glass, each through the one path in [`crate::revocation`].
//! A user managed by the org's IdP over SCIM is read-only here (the IdP would undo any change
//! at its next sync), except for break-glass: an app-side security setting the IdP knows nothing
//! of, and what an admin needs when that IdP is down.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing_actix_web::RequestId;

use super::dashboard::{actor, no_such_user};
use crate::{
    auth::AdminUser,
    db::{
        Pool,
        ids::{AccountState, ManagedBy, UserId},
        models::{RevocationSource, User},
    },
    error::AppError,
    flash::{self, Flash},
    metrics::Metrics,
    priority::RevocationPool,
    revocation::{self, Requester, RoleError},
};

/// A form's `true` or `false`.
fn parse_bool(value: &str, what: &str) -> Result<bool, AppError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AppError::BadRequest(format!(
            "The {what} must be true or false."
        ))),
    }
}

/// The user `path` names in the admin's org, refused (409) if the org's IdP manages it.
async fn editable_user(
    pool: &Pool,
    admin: &AdminUser,
    path: &str,
    change: &str,
) -> Result<User, AppError> {
    let id: UserId = path.parse().map_err(|_| no_such_user())?;
    let mut conn = pool.get().await?;
    let user = User::find_in_org(&mut conn, admin.0.org_id, id)
        .await?
        .ok_or_else(no_such_user)?;
    if user.managed_by == ManagedBy::Scim {
        return Err(AppError::Conflict(format!(
            "{} is managed by your identity provider (SCIM): {change} them there, or your \
             identity provider will undo it at its next sync.",
            user.email
        )));
    }
    Ok(user)
}

#[derive(Deserialize)]
pub struct RoleForm {
    /// `true` or `false`.
    admin: String,
}

/// `POST /admin/users/{id}/role`: "Make admin" or "Remove admin". A user who loses the role
/// loses the org's live feed at once, on every instance; the org's last admin keeps the role.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn set_role(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let make_admin = parse_bool(&form.admin, "role")?;
    let user = editable_user(&pool, &admin, &path, "change their role").await?;
    let mut conn = pool.get().await?;
    let org = admin.0.org_id;
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    let change = match revocation::set_admin(&mut conn, org, user.id, make_admin, by).await {
        Ok(change) => change.ok_or_else(no_such_user)?,
        Err(RoleError::LastAdmin(email)) => {
            let message = format!(
                "{email} is the only administrator of your organisation: make someone else an administrator first."
            );
            return Ok(flash::redirect(&req, "/admin", Flash::error(message)));
        }
        Err(RoleError::Database(e)) => return Err(e.into()),
    };
    let email = &change.user.email;
    let (message, to) = match (make_admin, change.user.id == admin.0.id) {
        (true, _) => (format!("{email} is now an administrator."), "/admin"),
        (false, false) => (format!("{email} is no longer an administrator."), "/admin"),
        (false, true) => ("You are no longer an administrator.".to_owned(), "/todos"),
    };
    Ok(flash::redirect(&req, to, Flash::info(message)))
}

/// `POST /admin/users/{id}/suspend`: signs the user out everywhere and keeps them out until
/// reactivated; their todos stay. An admin cannot suspend themselves (they would lock
/// themselves out of the page that undoes it).
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn suspend(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    revocations: web::Data<RevocationPool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let pools = (&**pool, &**revocations);
    set_state(
        req,
        admin,
        &path,
        AccountState::Suspended,
        pools,
        &metrics,
        request_id,
    )
    .await
}

/// `POST /admin/users/{id}/reactivate`: lets a suspended user sign in again (nothing that
/// ended comes back).
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn reactivate(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    revocations: web::Data<RevocationPool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let pools = (&**pool, &**revocations);
    set_state(
        req,
        admin,
        &path,
        AccountState::Active,
        pools,
        &metrics,
        request_id,
    )
    .await
}

async fn set_state(
    req: HttpRequest,
    admin: AdminUser,
    path: &str,
    to: AccountState,
    (pool, revocations): (&Pool, &RevocationPool),
    metrics: &Metrics,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let suspending = to == AccountState::Suspended;
    let verb = if suspending { "suspend" } else { "reactivate" };
    let user = editable_user(pool, &admin, path, verb).await?;
    if suspending && user.id == admin.0.id {
        let message = "You cannot suspend yourself: another administrator can.";
        return Ok(flash::redirect(&req, "/admin", Flash::error(message)));
    }
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    // A state change goes through the reserved connections; a suspension is a revocation, and
    // pages give way until it is written.
    let _pages_held = suspending.then(|| revocations.hold_pages());
    let mut conn = revocations.get().await?;
    let change = revocation::set_state(&mut conn, admin.0.org_id, user.id, to, by);
    // A suspension is a revocation, timed with the others; a reactivation ends nothing.
    let change = if suspending {
        metrics.timed(by.source, change).await
    } else {
        change.await
    };
    let change = change?.ok_or_else(no_such_user)?;
    let email = &change.user.email;
    let message = match (change.changed, change.outcome) {
        (false, _) => format!("{email} was already {}.", to.as_str()),
        (true, Some(ended)) => format!(
            "Suspended {email}: {} session{} ended, {} token{} revoked. They cannot sign in until reactivated.",
            ended.sessions_ended,
            if ended.sessions_ended == 1 { "" } else { "s" },
            ended.tokens_revoked,
            if ended.tokens_revoked == 1 { "" } else { "s" },
        ),
        (true, None) => format!("Reactivated {email}: they can sign in again."),
    };
    Ok(flash::redirect(&req, "/admin", Flash::info(message)))
}

#[derive(Deserialize)]
pub struct BreakGlassForm {
    /// `true` or `false`.
    break_glass: String,
}

/// `POST /admin/users/{id}/break-glass`: allows (or stops) password sign-in for this user
/// although the org signs in through SSO. Allowed for SCIM-managed users too (see the module).
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn set_break_glass(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    form: web::Form<BreakGlassForm>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let on = parse_bool(&form.break_glass, "break-glass setting")?;
    let id: UserId = path.parse().map_err(|_| no_such_user())?;
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester::new(RevocationSource::Admin, &actor, &request_id);
    let mut conn = pool.get().await?;
    let user = revocation::set_break_glass(&mut conn, admin.0.org_id, id, on, by)
        .await?
        .ok_or_else(no_such_user)?;
    let message = if on {
        format!(
            "{} has break-glass: they may sign in with a password even when your organisation requires single sign-on.",
            user.email
        )
    } else {
        format!("{} no longer has break-glass.", user.email)
    };
    Ok(flash::redirect(&req, "/admin", Flash::info(message)))
}

/// `POST /admin/users/{id}/reauth`: "Ask to sign in again" (IPSIE SL2 re-establish session):
/// the user's sessions are kept and each goes on once it has authenticated again. Allowed for
/// SCIM-managed users too: like a logout, it changes nothing the IdP manages.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn require_reauth(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path.parse().map_err(|_| no_such_user())?;
    let (actor, request_id) = (actor(&admin), request_id.to_string());
    let by = Requester {
        source: RevocationSource::Reauth,
        ..Requester::new(RevocationSource::Admin, &actor, &request_id)
    };
    let mut conn = pool.get().await?;
    let user = User::find_in_org(&mut conn, admin.0.org_id, id)
        .await?
        .ok_or_else(no_such_user)?;
    let asked = revocation::require_reauth(&mut conn, admin.0.org_id, id, by)
        .await?
        .ok_or_else(no_such_user)?;
    let message = format!(
        "Asked {} to sign in again: {asked} session{} will authenticate before going on.",
        user.email,
        if asked == 1 { "" } else { "s" }
    );
    Ok(flash::redirect(&req, "/admin", Flash::info(message)))
}
