//! What a change to a group's members does beyond the group: an audit row on each user who
//! joined or left, and (IPSIE AL2) the admin role of those who joined or left the org's admin
//! group, set through [`revocation::set_admin_from_idp`] in the same transaction.

use std::collections::HashSet;

use diesel_async::AsyncPgConnection;
use serde_json::json;

use crate::{
    db::{
        ids::{OrgId, UserId},
        models::{Action, Org},
    },
    revocation::{self, Requester},
    scim::error::ScimError,
};

/// A group as it was or is: its name and members.
pub struct Snapshot<'a> {
    pub name: &'a str,
    pub members: &'a [UserId],
}

/// One audit row per user who joined or left `group`.
pub async fn audit_memberships(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    group: &str,
    joined: &[UserId],
    left: &[UserId],
    by: Requester<'_>,
) -> Result<(), ScimError> {
    let joined = joined.iter().map(|u| (u, "joined"));
    let left = left.iter().map(|u| (u, "left"));
    for (user, what) in joined.chain(left) {
        let detail = json!({ "group": group, "membership": what });
        revocation::lifecycle::record(conn, org, *user, Action::Update, by, detail).await?;
    }
    Ok(())
}

/// Those of `these` not in `those` (groups may be large: a set, not a scan per member).
pub fn difference(these: &[UserId], those: &[UserId]) -> Vec<UserId> {
    let those: HashSet<&UserId> = those.iter().collect();
    these
        .iter()
        .filter(|u| !those.contains(u))
        .copied()
        .collect()
}

/// Grants the admin role to those now in the org's admin group who were not, and removes it
/// from those who were and are not (left, renamed away, deleted). The IdP is authoritative, so
/// it may remove the org's last admin.
pub async fn sync_admins(
    conn: &mut AsyncPgConnection,
    org: &Org,
    before: Option<Snapshot<'_>>,
    after: Option<Snapshot<'_>>,
    by: Requester<'_>,
) -> Result<(), ScimError> {
    let Some(admin_group) = org.admin_group.as_deref() else {
        return Ok(());
    };
    let admins = |s: Option<Snapshot<'_>>| -> Vec<UserId> {
        s.filter(|s| s.name.to_lowercase() == admin_group.to_lowercase())
            .map(|s| s.members.to_vec())
            .unwrap_or_default()
    };
    let (was, now) = (admins(before), admins(after));
    let granted = difference(&now, &was).into_iter().map(|u| (u, true));
    let removed = difference(&was, &now).into_iter().map(|u| (u, false));
    for (user, admin) in granted.chain(removed) {
        revocation::set_admin_from_idp(conn, org.id, user, admin, by).await?;
    }
    Ok(())
}
