use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{OrgId, UserId},
    schema::revocations,
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
}

impl RevocationSource {
    /// The value stored in `revocations.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ual => "ual",
            Self::Backchannel => "backchannel",
            Self::Admin => "admin",
            Self::SelfService => "self",
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

    /// The org's most recent revocations, newest first.
    pub async fn recent_for_org(
        conn: &mut AsyncPgConnection,
        org: OrgId,
        limit: i64,
    ) -> QueryResult<Vec<Revocation>> {
        revocations::table
            .filter(revocations::org_id.eq(org))
            .order(revocations::id.desc())
            .limit(limit)
            .select(Revocation::as_select())
            .load(conn)
            .await
    }
}
