//! The admin role: granted and removed here, audited, and announced so that every instance closes
//! the live feed of a user who lost it.

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Requester, audit_row};
use crate::db::{
    ids::{OrgId, UserId},
    models::{Action, Revocation, User},
};

/// The channel that carries [`RoleNotice`]s.
pub const ROLE_CHANNEL: &str = "ual_todo_roles";

/// A user's admin role was set: every instance closes the org feed of a user who is not (or no
/// longer) an admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleNotice {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub is_admin: bool,
}

/// Why a role did not change. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("{0} is the only administrator of the organisation")]
    LastAdmin(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// A role as set: the user afterwards, and whether it changed.
#[derive(Debug)]
pub struct RoleChange {
    pub user: User,
    pub changed: bool,
}

/// Makes `user` of `org` an admin or not (`None`: no such user in the org), and announces it on
/// [`ROLE_CHANNEL`] in the same transaction, so every instance closes a demoted admin's live
/// feed as soon as the change commits. The org's last admin cannot be demoted; its admins are
/// locked meanwhile, so two admins demoting each other at once cannot leave it with none.
/// A change is audited; it is announced even when unchanged, so a stray feed of a non-admin
/// closes too.
pub async fn set_admin(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    admin: bool,
    by: Requester<'_>,
) -> Result<Option<RoleChange>, RoleError> {
    change_admin(conn, org, user, admin, by, KeepLast::Yes).await
}

/// As [`set_admin`], for the org's IdP (SCIM group membership, IPSIE AL2): the IdP is
/// authoritative, so it may remove the org's last admin too. An operator can always make a new
/// one (`ual-todo user set-admin`).
pub async fn set_admin_from_idp(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    admin: bool,
    by: Requester<'_>,
) -> Result<Option<RoleChange>, RoleError> {
    change_admin(conn, org, user, admin, by, KeepLast::No).await
}

/// Whether the org's last admin keeps the role.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeepLast {
    Yes,
    No,
}

async fn change_admin(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    admin: bool,
    by: Requester<'_>,
    keep_last: KeepLast,
) -> Result<Option<RoleChange>, RoleError> {
    let change = conn
        .transaction(async |conn| {
            let admins = User::lock_admins(conn, org).await?;
            let Some(mut found) = User::find_in_org(conn, org, user).await? else {
                return Ok(None);
            };
            if !admin && keep_last == KeepLast::Yes && admins == [found.id] {
                return Err(RoleError::LastAdmin(found.email));
            }
            let changed = found.is_admin != admin;
            if changed {
                User::set_admin(conn, found.id, admin).await?;
                found.is_admin = admin;
                let action = if admin {
                    Action::GrantAdmin
                } else {
                    Action::RemoveAdmin
                };
                let detail = json!({ "before": { "admin": !admin }, "after": { "admin": admin } });
                Revocation::insert(
                    conn,
                    &audit_row(org, found.id, (0, 0), by, action, Some(detail)),
                )
                .await?;
            }
            let notice = RoleNotice {
                org_id: org,
                user_id: found.id,
                is_admin: admin,
            };
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(ROLE_CHANNEL)
                .bind::<Text, _>(serde_json::to_string(&notice).expect("serialisable"))
                .execute(conn)
                .await?;
            Ok(Some(RoleChange {
                user: found,
                changed,
            }))
        })
        .await?;
    if change.as_ref().is_some_and(|c| c.changed) {
        tracing::info!(org_id = %org, user_id = %user, admin, actor = by.actor, "changed an admin role");
    }
    Ok(change)
}
