use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{OrgId, UserId},
    schema::{revocations, users},
};

/// Who asked for sessions to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationSource {
    /// The IdP, through `POST /global-token-revocation`.
    Ual,
    /// The IdP, through OIDC back-channel logout.
    Backchannel,
    /// An admin of the org, from the dashboard.
    Admin,
    /// The user, signing out.
    #[serde(rename = "self")]
    SelfService,
    /// The org's IdP, provisioning over SCIM.
    Scim,
    /// An operator, on the command line (`cli` in notices from older instances).
    #[serde(alias = "cli")]
    Operator,
    /// The IdP's session ended (the ID token's `session_expiry`).
    #[serde(rename = "idp_expiry")]
    IdpExpiry,
    /// The user was asked to sign in again (an admin or operator; IPSIE SL2).
    Reauth,
    /// The org's IdP, through a Shared Signals CAEP event.
    Caep,
    /// The org's IdP, through a Shared Signals RISC event.
    Risc,
}

impl RevocationSource {
    /// Every source, in the order filters list them.
    pub const ALL: [RevocationSource; 10] = [
        Self::Ual,
        Self::Caep,
        Self::Risc,
        Self::Scim,
        Self::Admin,
        Self::Backchannel,
        Self::IdpExpiry,
        Self::Reauth,
        Self::SelfService,
        Self::Operator,
    ];

    /// The source stored as `value`.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// How pages name the source: "signed out by …".
    pub fn label(self) -> &'static str {
        match self {
            Self::Ual => "Universal Logout",
            Self::Backchannel => "IdP back-channel logout",
            Self::Admin => "an administrator",
            Self::SelfService => "the user",
            Self::Scim => "SCIM provisioning",
            Self::Operator => "an operator",
            Self::IdpExpiry => "the end of the IdP session",
            Self::Reauth => "a request to sign in again",
            Self::Caep => "a Shared Signals session event",
            Self::Risc => "a Shared Signals account event",
        }
    }

    /// The value stored in `revocations.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ual => "ual",
            Self::Backchannel => "backchannel",
            Self::Admin => "admin",
            Self::SelfService => "self",
            Self::Scim => "scim",
            Self::Operator => "operator",
            Self::IdpExpiry => "idp_expiry",
            Self::Reauth => "reauth",
            Self::Caep => "caep",
            Self::Risc => "risc",
        }
    }
}

crate::db::ids::text_enum!(
    /// What an audit row records.
    Action {
        /// Sessions and tokens ended.
        Revoke = "revoke",
        /// The account was suspended (and its sessions and tokens ended).
        Suspend = "suspend",
        Reactivate = "reactivate",
        /// The account was deleted (and its sessions and tokens ended).
        Delete = "delete",
        /// The account was created (provisioned).
        Create = "create",
        /// The account's attributes changed.
        Update = "update",
        GrantAdmin = "grant_admin",
        RemoveAdmin = "remove_admin",
        /// The break-glass (password despite SSO) flag changed.
        BreakGlass = "break_glass",
        /// The user's sessions must authenticate again before going on (kept meanwhile).
        Reauth = "reauth",
    }
);

impl Action {
    /// Whether this action ends every session of the user it concerns.
    pub fn ends_sessions(self) -> bool {
        matches!(self, Self::Revoke | Self::Suspend | Self::Delete)
    }

    /// How the audit log names the action (break-glass says on or off from its detail).
    pub fn label(self) -> &'static str {
        match self {
            Self::Revoke => "Signed out",
            Self::Suspend => "Suspended",
            Self::Reactivate => "Reactivated",
            Self::Delete => "Deleted",
            Self::Create => "Created",
            Self::Update => "Updated",
            Self::GrantAdmin => "Made admin",
            Self::RemoveAdmin => "Removed admin",
            Self::BreakGlass => "Break-glass changed",
            Self::Reauth => "Asked to sign in again",
        }
    }

    /// What happened to the user, as the dashboard's feed says it: "alice … by an administrator".
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Revoke => "signed out",
            Self::Suspend => "suspended",
            Self::Reactivate => "reactivated",
            Self::Delete => "deleted",
            Self::Create => "created",
            Self::Update => "updated",
            Self::GrantAdmin => "made an administrator",
            Self::RemoveAdmin => "removed as administrator",
            Self::BreakGlass => "had break-glass changed",
            Self::Reauth => "asked to sign in again",
        }
    }
}

/// A row of the audit log.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = revocations, check_for_backend(diesel::pg::Pg))]
pub struct Revocation {
    pub id: i64,
    pub org_id: OrgId,
    pub user_id: Option<UserId>,
    pub source: String,
    pub actor: String,
    pub sessions_ended: i32,
    pub tokens_revoked: i32,
    pub request_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub action: Action,
    /// The state before and after, where it changed.
    pub detail: Option<serde_json::Value>,
}

/// An audit row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = revocations)]
pub struct NewRevocation<'a> {
    pub org_id: OrgId,
    pub user_id: Option<UserId>,
    pub source: &'a str,
    pub actor: &'a str,
    pub sessions_ended: i32,
    pub tokens_revoked: i32,
    pub request_id: Option<&'a str>,
    pub action: Action,
    pub detail: Option<serde_json::Value>,
}

impl Revocation {
    pub async fn insert(
        conn: &mut AsyncPgConnection,
        new: &NewRevocation<'_>,
    ) -> QueryResult<Revocation> {
        diesel::insert_into(revocations::table)
            .values(new)
            .returning(Revocation::as_returning())
            .get_result(conn)
            .await
    }

    /// A page of the org's audit log, newest first, with each user's email; optionally only
    /// one user's or one source's rows. Returns `limit` rows at most.
    pub async fn page_for_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<(Revocation, Option<String>)>> {
        let mut query = revocations::table
            .left_join(users::table)
            .filter(revocations::org_id.eq(org))
            .into_boxed();
        if let Some(user) = filter.user {
            query = query.filter(revocations::user_id.eq(user));
        }
        if let Some(source) = filter.source {
            query = query.filter(revocations::source.eq(source.as_str()));
        }
        query
            .order(revocations::id.desc())
            .offset(offset)
            .limit(limit)
            .select((Revocation::as_select(), users::email.nullable()))
            .load(conn)
            .await
    }
}

/// Which audit rows to show.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditFilter {
    pub user: Option<UserId>,
    pub source: Option<RevocationSource>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_travels_in_notices_as_it_is_stored() {
        for source in RevocationSource::ALL {
            let json = serde_json::to_value(source).unwrap();
            assert_eq!(json, source.as_str(), "{source:?}");
            assert_eq!(RevocationSource::parse(source.as_str()), Some(source));
        }
    }
}
