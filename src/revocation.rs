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

use time::OffsetDateTime;

use crate::db::{
    ids::{OrgId, SessionId, UserId},
    models::{AccessToken, NewRevocation, Revocation, RevocationSource, SeenJti},
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
    /// The single-use JWT that asked, recorded in the revocation's own transaction: a replay is
    /// refused, and a revocation that fails leaves the JWT usable for a retry.
    pub single_use: Option<SingleUse<'a>>,
}

/// A JWT id that may be used once.
#[derive(Clone, Copy, Debug)]
pub struct SingleUse<'a> {
    pub issuer: &'a str,
    pub jti: &'a str,
    /// Until when the JWT could be accepted (its `exp` plus leeway): kept that long.
    pub remember_until: OffsetDateTime,
}

/// Why a revocation did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("this token was already used")]
    Replayed,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
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
    /// The sessions that ended; empty when every session of the user did.
    pub session_ids: Vec<SessionId>,
    pub source: RevocationSource,
    /// Who asked, as the audit log has it (cut to 200 characters).
    pub actor: String,
    pub sessions_ended: usize,
    /// When it happened, in Unix milliseconds.
    pub at_ms: i64,
}

/// Ends every session and personal access token of `user` in `org`, audits and announces it.
/// Idempotent: a user with nothing left to end gets an audit row too. Todos are never touched.
/// IdP tokens obtained at SSO sign-in live only in the session's state, so they go with it.
pub async fn revoke_user(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    by: Requester<'_>,
) -> Result<Outcome, RevokeError> {
    conn.transaction(async |conn| {
        use_once(conn, by).await?;
        let ended = diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(user))
                .filter(sessions::org_id.eq(org)),
        )
        .execute(conn)
        .await?;
        let tokens = AccessToken::revoke_all_for_user(conn, user).await?;
        Ok(finish(conn, org, user, Vec::new(), ended, tokens, by).await?)
    })
    .await
}

/// Which sessions of an org to end.
#[derive(Clone, Copy, Debug)]
pub enum Sessions<'a> {
    /// One session, as pages and admins name it.
    One(SessionId),
    /// Every session signed in through one session at the IdP (the ID token's `sid`).
    OfIdpSession(&'a str),
}

/// Ends some sessions of `org`: one audit row and one announcement per user concerned. Empty
/// when no session matched (already ended), which still spends a single-use JWT.
pub async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    which: Sessions<'_>,
    by: Requester<'_>,
) -> Result<Vec<Outcome>, RevokeError> {
    conn.transaction(async |conn| {
        use_once(conn, by).await?;
        let in_org = sessions::table.filter(sessions::org_id.eq(org));
        let ended: Vec<(SessionId, Option<UserId>)> = match which {
            Sessions::One(id) => {
                diesel::delete(in_org.filter(sessions::public_id.eq(id)))
                    .returning((sessions::public_id, sessions::user_id))
                    .get_results(conn)
                    .await?
            }
            Sessions::OfIdpSession(sid) => {
                diesel::delete(in_org.filter(sessions::oidc_sid.eq(sid)))
                    .returning((sessions::public_id, sessions::user_id))
                    .get_results(conn)
                    .await?
            }
        };
        let mut by_user: std::collections::BTreeMap<UserId, Vec<SessionId>> = Default::default();
        for (session, user) in ended {
            if let Some(user) = user {
                by_user.entry(user).or_default().push(session);
            }
        }
        let mut outcomes = Vec::with_capacity(by_user.len());
        for (user, sessions) in by_user {
            let count = sessions.len();
            outcomes.push(finish(conn, org, user, sessions, count, 0, by).await?);
        }
        Ok(outcomes)
    })
    .await
}

/// Revokes one personal access token of `user`, audited; `false` when the user has no such live
/// token. No session ends, so nothing is announced.
pub async fn revoke_access_token(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    token: uuid::Uuid,
    by: Requester<'_>,
) -> Result<bool, RevokeError> {
    conn.transaction(async |conn| {
        if !AccessToken::revoke_one(conn, user, token).await? {
            return Ok(false);
        }
        Revocation::insert(conn, &audit_row(org, user, 0, 1, by)).await?;
        Ok(true)
    })
    .await
}

fn audit_row<'a>(
    org: OrgId,
    user: UserId,
    sessions_ended: usize,
    tokens_revoked: usize,
    by: Requester<'a>,
) -> NewRevocation<'a> {
    NewRevocation {
        org_id: org,
        user_id: Some(user),
        source: by.source.as_str(),
        actor: by.actor,
        sessions_ended: i32::try_from(sessions_ended).unwrap_or(i32::MAX),
        tokens_revoked: i32::try_from(tokens_revoked).unwrap_or(i32::MAX),
        request_id: by.request_id,
    }
}

/// Records the requester's single-use JWT id, refusing a replay.
async fn use_once(conn: &mut AsyncPgConnection, by: Requester<'_>) -> Result<(), RevokeError> {
    match by.single_use {
        Some(once)
            if !SeenJti::record(conn, once.issuer, once.jti, once.remember_until).await? =>
        {
            Err(RevokeError::Replayed)
        }
        _ => Ok(()),
    }
}

/// The common tail of both revocations, inside their transaction: audit row and notification.
async fn finish(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    session_ids: Vec<SessionId>,
    sessions_ended: usize,
    tokens_revoked: usize,
    by: Requester<'_>,
) -> QueryResult<Outcome> {
    let row = Revocation::insert(
        conn,
        &audit_row(org, user, sessions_ended, tokens_revoked, by),
    )
    .await?;
    let notice = Notice {
        revocation_id: row.id,
        org_id: org,
        user_id: user,
        session_ids,
        source: by.source,
        actor: by.actor.chars().take(200).collect(),
        sessions_ended,
        at_ms: i64::try_from(row.created_at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default(),
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
        tokens_revoked,
    })
}
