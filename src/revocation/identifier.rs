//! A user's email changed at the IdP (RISC `identifier-changed`): the account follows, audited
//! with the email before and after. Sessions are kept (the person is the same).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::{Requester, RevokeError, audit_row, lifecycle::spend};
use crate::db::{
    ids::{OrgId, UserId},
    models::{Action, Revocation, User},
    schema::users,
};

/// What became of an email change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailChange {
    Changed {
        before: String,
    },
    /// The user already has this email.
    Unchanged,
    /// Another user of the org has it; nothing changed.
    Taken,
    /// No such user.
    NoUser,
}

/// Sets the email of `user` of `org` to `email`, audited; the requester's single-use id is spent
/// in the same transaction whatever the outcome.
pub async fn change_email(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    email: &str,
    by: Requester<'_>,
) -> Result<EmailChange, RevokeError> {
    conn.transaction::<_, RevokeError, _>(async |conn| {
        let by = spend(conn, by).await?;
        let Some(found) = User::lock_in_org(conn, org, user).await? else {
            return Ok(EmailChange::NoUser);
        };
        if found.email == email {
            return Ok(EmailChange::Unchanged);
        }
        if User::find_by_email(conn, org, email)
            .await?
            .is_some_and(|other| other.id != found.id)
        {
            return Ok(EmailChange::Taken);
        }
        diesel::update(users::table.find(found.id))
            .set((
                users::email.eq(email),
                users::version.eq(users::version + 1),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        let detail = json!({ "before": { "email": found.email }, "after": { "email": email } });
        let row = audit_row(org, found.id, (0, 0), by, Action::Update, Some(detail));
        Revocation::insert(conn, &row).await?;
        tracing::info!(org_id = %org, user_id = %found.id, source = by.source.as_str(),
            "changed a user's email");
        Ok(EmailChange::Changed {
            before: found.email,
        })
    })
    .await
}
