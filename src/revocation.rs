//! The one way sessions and tokens end: Universal Logout, back-channel logout, admins and users
//! signing out all call [`revoke_user`] or [`revoke_sessions`]. The admin role changes here too
//! ([`set_admin`]), since losing it must end the org's live feed the same way.
//!
//! Each change is one transaction. A revocation is a single statement (spend the JWT id, delete
//! the session rows, revoke the tokens, write the audit row, `NOTIFY` the instances); a role
//! change locks the org's admins, updates and notifies in one transaction of a few statements.
//! PostgreSQL delivers a notification only on commit, so every listener hears of a change only
//! once it is durable, and a caller that answers after this returns answers after it is done.

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{
    ids::{OrgId, SessionId, UserId},
    models::{AccessToken, NewRevocation, Revocation, RevocationSource, User},
};

/// The `LISTEN`/`NOTIFY` channel that carries [`Notice`]s.
pub const CHANNEL: &str = "ual_todo_revocations";
/// The channel that carries [`RoleNotice`]s.
pub const ROLE_CHANNEL: &str = "ual_todo_roles";

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

impl<'a> Requester<'a> {
    /// Who asked (`actor`, through `source`) in request `request_id`.
    pub fn new(source: RevocationSource, actor: &'a str, request_id: &'a str) -> Self {
        Requester {
            source,
            actor,
            request_id: Some(request_id),
            single_use: None,
        }
    }

    /// The same request, carrying the single-use JWT id that asked (if any).
    pub fn spending(self, single_use: Option<SingleUse<'a>>) -> Self {
        Requester { single_use, ..self }
    }
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
    let outcomes = revoke(conn, org, Target::User(user), by).await?;
    outcomes
        .into_iter()
        .next()
        .ok_or(RevokeError::Database(diesel::result::Error::NotFound))
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
    revoke(conn, org, Target::Sessions(which), by).await
}

enum Target<'a> {
    User(UserId),
    Sessions(Sessions<'a>),
}

/// The revocation, as one statement (so one round trip, and atomic without BEGIN/COMMIT):
/// spend the JWT id (a conflict means a replay, and then nothing else happens), delete the
/// sessions, revoke the tokens (whole-user revocations only), write one audit row per user, and
/// NOTIFY each of them. Exactly one of $5 (user), $6 (session), $7 (IdP session) is set. With no
/// audit row (a replay, or no session matched) the outer join still yields one row, of NULLs:
/// it must not NOTIFY, or every instance would log an unreadable notice.
const REVOKE: &str = "
WITH spent AS (
    INSERT INTO seen_jtis (issuer, jti, expires_at)
    SELECT $1, $2, $3 WHERE $2 IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
), allowed AS (
    SELECT $2::text IS NULL OR EXISTS (SELECT 1 FROM spent) AS ok
), ended AS (
    DELETE FROM sessions
    WHERE org_id = $4 AND (SELECT ok FROM allowed)
      AND (user_id = $5 OR public_id = $6 OR oidc_sid = $7)
    RETURNING public_id, user_id
), tokens AS (
    UPDATE access_tokens SET revoked_at = now()
    WHERE user_id = $5 AND revoked_at IS NULL AND (SELECT ok FROM allowed)
    RETURNING 1
), per_user AS (
    SELECT $5::uuid AS user_id, ARRAY[]::uuid[] AS ids, (SELECT count(*) FROM ended) AS n
    WHERE $5::uuid IS NOT NULL AND (SELECT ok FROM allowed)
    UNION ALL
    SELECT user_id, array_agg(public_id), count(*)
    FROM ended WHERE $5::uuid IS NULL AND user_id IS NOT NULL GROUP BY user_id
), audit AS (
    INSERT INTO revocations (org_id, user_id, source, actor, sessions_ended, tokens_revoked, request_id)
    SELECT $4, user_id, $8, $9, n, (SELECT count(*) FROM tokens), $10 FROM per_user
    RETURNING id, user_id, sessions_ended, tokens_revoked, created_at
)
SELECT (SELECT ok FROM allowed) AS allowed, audit.id, audit.sessions_ended, audit.tokens_revoked,
       CASE WHEN audit.id IS NOT NULL THEN pg_notify($11, json_build_object(
           'revocation_id', audit.id, 'org_id', $4, 'user_id', audit.user_id,
           'session_ids', per_user.ids, 'source', $8, 'actor', left($9, 200),
           'sessions_ended', audit.sessions_ended,
           'at_ms', (extract(epoch FROM audit.created_at) * 1000)::bigint)::text) END AS notified
FROM allowed
LEFT JOIN (audit JOIN per_user USING (user_id)) ON true";

#[derive(QueryableByName)]
struct Revoked {
    #[diesel(sql_type = Bool)]
    allowed: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    sessions_ended: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    tokens_revoked: Option<i32>,
}

async fn revoke(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    target: Target<'_>,
    by: Requester<'_>,
) -> Result<Vec<Outcome>, RevokeError> {
    let (user, session, idp_session) = match target {
        Target::User(user) => (Some(user.0), None, None),
        Target::Sessions(Sessions::One(id)) => (None, Some(id.0), None),
        Target::Sessions(Sessions::OfIdpSession(sid)) => (None, None, Some(sid)),
    };
    let once = by.single_use;
    let rows: Vec<Revoked> = diesel::sql_query(REVOKE)
        .bind::<Nullable<Text>, _>(once.map(|o| o.issuer))
        .bind::<Nullable<Text>, _>(once.map(|o| o.jti))
        .bind::<Nullable<Timestamptz>, _>(once.map(|o| o.remember_until))
        .bind::<Uuid, _>(org.0)
        .bind::<Nullable<Uuid>, _>(user)
        .bind::<Nullable<Uuid>, _>(session)
        .bind::<Nullable<Text>, _>(idp_session)
        .bind::<Text, _>(by.source.as_str())
        .bind::<Text, _>(by.actor)
        .bind::<Nullable<Text>, _>(by.request_id)
        .bind::<Text, _>(CHANNEL)
        .load(conn)
        .await?;
    if rows.iter().any(|row| !row.allowed) {
        return Err(RevokeError::Replayed);
    }
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(Outcome {
                revocation_id: row.id?,
                sessions_ended: usize::try_from(row.sessions_ended?).unwrap_or_default(),
                tokens_revoked: usize::try_from(row.tokens_revoked?).unwrap_or_default(),
            })
        })
        .collect())
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
        action: "revoke",
        detail: None,
    }
}

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
/// Announced even when unchanged: a stray feed of a non-admin closes too.
pub async fn set_admin(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    admin: bool,
    actor: &str,
) -> Result<Option<RoleChange>, RoleError> {
    let change = conn
        .transaction(async |conn| {
            let admins = User::lock_admins(conn, org).await?;
            let Some(mut found) = User::find_in_org(conn, org, user).await? else {
                return Ok(None);
            };
            if !admin && admins == [found.id] {
                return Err(RoleError::LastAdmin(found.email));
            }
            let changed = found.is_admin != admin;
            if changed {
                User::set_admin(conn, found.id, admin).await?;
                found.is_admin = admin;
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
        tracing::info!(org_id = %org, user_id = %user, admin, actor, "changed an admin role");
    }
    Ok(change)
}
