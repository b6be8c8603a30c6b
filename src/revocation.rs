//! The one way sessions and tokens end: Universal Logout, back-channel logout, admins and users
//! signing out all call [`revoke_user`] or [`revoke_session`].
//!
//! Each call is one transaction: delete the session rows, revoke the tokens, write the audit row,
//! `NOTIFY` the instances. PostgreSQL delivers the notification only on commit, so every listener
//! hears of a revocation only once it is durable, and a caller that answers after this returns
//! answers after the revocation is complete.

use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::{
    ids::{OrgId, SessionId, UserId},
    models::{NewRevocation, Revocation, RevocationSource},
    schema::sessions,
};

/// The `LISTEN`/`NOTIFY` channel that carries [`Notice`]s.
pub const CHANNEL: &str = "ual_todo_revocations";

/// Who asked, for the audit log, and under which request.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    pub source: RevocationSource,
    /// An API key prefix, a JWT issuer and id, an admin's email, or `user`.
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
}

/// What a revocation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub revocation_id: i64,
    pub sessions_ended: usize,
    pub tokens_revoked: usize,
}

/// The payload sent to every instance on [`CHANNEL`]: small, well under NOTIFY's 8000 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub revocation_id: i64,
    pub org_id: OrgId,
    pub user_id: UserId,
    /// Set when a single session ended; otherwise every session of the user did.
    pub session_id: Option<SessionId>,
    pub source: RevocationSource,
}

/// Ends every session and token of `user` in `org`, audits and announces it. Idempotent: a user
/// with nothing left to end gets an audit row too. Todos are never touched.
pub async fn revoke_user(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    by: Requester<'_>,
) -> QueryResult<Outcome> {
    conn.transaction(async |conn| {
        let ended = diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(user))
                .filter(sessions::org_id.eq(org)),
        )
        .execute(conn)
        .await?;
        finish(conn, org, user, None, ended, by).await
    })
    .await
}

/// Ends one session of `org`; `None` when there is no such session (already ended).
pub async fn revoke_session(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    session: SessionId,
    by: Requester<'_>,
) -> QueryResult<Option<Outcome>> {
    conn.transaction(async |conn| {
        let owner: Option<Option<UserId>> = diesel::delete(
            sessions::table
                .filter(sessions::public_id.eq(session))
                .filter(sessions::org_id.eq(org)),
        )
        .returning(sessions::user_id)
        .get_result(conn)
        .await
        .optional()?;
        match owner {
            Some(Some(user)) => finish(conn, org, user, Some(session), 1, by)
                .await
                .map(Some),
            _ => Ok(None),
        }
    })
    .await
}

/// The common tail of both revocations, inside their transaction: audit row and notification.
async fn finish(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    session: Option<SessionId>,
    sessions_ended: usize,
    by: Requester<'_>,
) -> QueryResult<Outcome> {
    let tokens_revoked = 0; // personal access tokens arrive with the Universal Logout issue
    let row = Revocation::insert(
        conn,
        &NewRevocation {
            org_id: org,
            user_id: Some(user),
            source: by.source.as_str(),
            actor: by.actor,
            sessions_ended: i32::try_from(sessions_ended).unwrap_or(i32::MAX),
            tokens_revoked,
            request_id: by.request_id,
        },
    )
    .await?;
    let notice = Notice {
        revocation_id: row.id,
        org_id: org,
        user_id: user,
        session_id: session,
        source: by.source,
    };
    let payload = serde_json::to_string(&notice).expect("a Notice always serializes");
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await?;
    Ok(Outcome {
        revocation_id: row.id,
        sessions_ended,
        tokens_revoked: 0,
    })
}
