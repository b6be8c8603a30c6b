//! The one way sessions and tokens end: Universal Logout, back-channel logout, SCIM, admins and
//! users signing out all call [`revoke_user`] or [`revoke_sessions`]; a whole org signs out in
//! batches ([`org`]). A user's state (suspended,
//! deleted: [`lifecycle`]) and admin role ([`roles`]) change here too, since both must end
//! sessions or live feeds the same way.
//!
//! Each change is one transaction. A revocation is a single statement (spend the JWT id, delete
//! the session rows, revoke the tokens, write the audit row, `NOTIFY` the instances); a role
//! change locks the org's admins, updates and notifies in one transaction of a few statements.
//! PostgreSQL delivers a notification only on commit, so every listener hears of a change only
//! once it is durable, and a caller that answers after this returns answers after it is done.

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{
    ids::{AccountState, OrgId, SessionId, UserId},
    models::{AccessToken, Action, NewRevocation, Revocation, RevocationSource},
    prepared::Prepared,
};

pub mod identifier;
pub mod lifecycle;
pub mod org;
pub mod roles;

pub use identifier::{EmailChange, change_email};
pub use lifecycle::{StateChange, require_reauth, set_break_glass, set_state};
pub use roles::{ROLE_CHANNEL, RoleChange, RoleError, RoleNotice, set_admin, set_admin_from_idp};

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

impl<'a> Requester<'a> {
    /// An operator on the command line.
    pub const COMMAND_LINE: Requester<'static> = Requester {
        source: RevocationSource::Operator,
        actor: "command line",
        request_id: None,
        single_use: None,
    };

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
    /// The sessions that ended; empty when every session of the user did (but the spared one).
    pub session_ids: Vec<SessionId>,
    /// With `session_ids` empty: the one session of the user that did not end (the user ended
    /// every other one from it; an admin signing out everyone in the org keeps their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spared_session_id: Option<SessionId>,
    pub source: RevocationSource,
    /// Who asked, as the audit log has it (cut to 200 characters).
    pub actor: String,
    pub sessions_ended: usize,
    /// When it happened, in Unix milliseconds.
    pub at_ms: i64,
    /// Why, as the ended tabs say it, when the source alone does not (`self_device`: the user
    /// ended this session from another one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened: a revocation, or a state change (which ends sessions unless it is a
    /// reactivation).
    #[serde(default = "plain_revocation")]
    pub action: Action,
}

/// What a notice without an action (from an older instance) announces.
fn plain_revocation() -> Action {
    Action::Revoke
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
    let outcomes = revoke(conn, org, Target::User(user), by, Effect::REVOKE).await?;
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
    /// One session of `user`, ended by that user from another of theirs (`from`, which never
    /// ends this way): a session of anyone else matches nothing.
    OneOfMine {
        user: UserId,
        session: SessionId,
        from: SessionId,
    },
    /// Every session of `user` but `keep` (the one asking); its tokens stay.
    AllOfMineBut { user: UserId, keep: SessionId },
    /// Every session of one user (their personal access tokens stay: see [`revoke_user`]).
    OfUser(UserId),
}

/// The reason the tabs of a session ended from another of its user's sessions give.
pub const FROM_ANOTHER_DEVICE: &str = "self_device";

/// Ends some sessions of `org`: one audit row and one announcement per user concerned. Empty
/// when no session matched (already ended), which still spends a single-use JWT.
pub async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    which: Sessions<'_>,
    by: Requester<'_>,
) -> Result<Vec<Outcome>, RevokeError> {
    revoke(conn, org, Target::Sessions(which), by, Effect::REVOKE).await
}

/// What the revocation statement records besides ending sessions: the audit row's action and
/// detail, and (suspending or deleting) the user's new state, so that a state change and the
/// end of its sessions are one statement.
struct Effect<'a> {
    action: Action,
    detail: Option<serde_json::Value>,
    state: Option<NewState<'a>>,
}

impl Effect<'_> {
    const REVOKE: Effect<'static> = Effect {
        action: Action::Revoke,
        detail: None,
        state: None,
    };
}

/// A user's new state, who set it (as the audit names them) and when.
struct NewState<'a> {
    to: AccountState,
    by: &'a str,
    at: OffsetDateTime,
}

enum Target<'a> {
    User(UserId),
    Sessions(Sessions<'a>),
}

/// The revocation, as one statement (so one round trip, and atomic without BEGIN/COMMIT):
/// spend the JWT id (a conflict means a replay, and then nothing else happens), delete the
/// sessions, revoke the tokens (whole-user revocations only), write one audit row per user, and
/// NOTIFY each of them, as `$12` (the action, with `$13` its detail). Exactly one of $5 (user),
/// $6 (session), $7 (IdP session), $17 (the sessions of a user) is set; $17 also narrows $6 to
/// that user's, and $18 is a session that does not end. A notice for "all but $18" names the
/// one kept (`spared_session_id`) rather than the ended, which may be many; $19 is its reason.
/// (Under a generic plan, as on the revocation lane, each unset arm is an empty index probe.)
/// With $14 set (whole-user revocations only), the user's state becomes $14, changed by $15 at
/// $16, and a deleted user leaves its groups (each group gets a new version: its members
/// changed). With no audit row (a replay, or no session matched) the outer join still yields one
/// row, of NULLs: it must not NOTIFY, or every instance would log an unreadable notice.
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
      AND (user_id = $5 OR public_id = $6 OR oidc_sid = $7 OR (user_id = $17 AND $6 IS NULL))
      AND ($17::uuid IS NULL OR user_id = $17)
      AND ($18::uuid IS NULL OR public_id <> $18)
    RETURNING public_id, user_id
), tokens AS (
    UPDATE access_tokens SET revoked_at = now()
    WHERE user_id = $5 AND revoked_at IS NULL AND (SELECT ok FROM allowed)
    RETURNING 1
), marked AS (
    UPDATE users SET state = $14, state_changed_at = $16, state_changed_by = $15,
                     deleted_at = CASE WHEN $14 = 'deleted' THEN $16 END,
                     version = version + 1, updated_at = $16
    WHERE id = $5 AND org_id = $4 AND $14::text IS NOT NULL AND (SELECT ok FROM allowed)
    RETURNING 1
), ungrouped AS (
    DELETE FROM group_members
    WHERE user_id = $5 AND $14::text = 'deleted' AND (SELECT ok FROM allowed)
    RETURNING group_id
), regrouped AS (
    UPDATE groups SET version = version + 1, updated_at = $16
    WHERE id IN (SELECT group_id FROM ungrouped)
    RETURNING 1
), per_user AS (
    SELECT $5::uuid AS user_id, ARRAY[]::uuid[] AS ids, (SELECT count(*) FROM ended) AS n
    WHERE $5::uuid IS NOT NULL AND (SELECT ok FROM allowed)
    UNION ALL
    SELECT user_id, array_agg(public_id), count(*)
    FROM ended WHERE $5::uuid IS NULL AND user_id IS NOT NULL GROUP BY user_id
), audit AS (
    INSERT INTO revocations (org_id, user_id, source, actor, sessions_ended, tokens_revoked,
                             request_id, action, detail)
    SELECT $4, user_id, $8, $9, n, (SELECT count(*) FROM tokens), $10, $12, $13 FROM per_user
    RETURNING id, user_id, sessions_ended, tokens_revoked, created_at
)
SELECT (SELECT ok FROM allowed) AS allowed, audit.id, audit.sessions_ended, audit.tokens_revoked,
       CASE WHEN audit.id IS NOT NULL THEN pg_notify($11, json_build_object(
           'revocation_id', audit.id, 'org_id', $4, 'user_id', audit.user_id,
           'session_ids', CASE WHEN $18::uuid IS NULL OR $6::uuid IS NOT NULL THEN per_user.ids
                               ELSE ARRAY[]::uuid[] END,
           'spared_session_id', CASE WHEN $6::uuid IS NULL THEN $18::uuid END, 'reason', $19::text,
           'source', $8, 'actor', left($9, 200),
           'sessions_ended', audit.sessions_ended, 'action', $12,
           'at_ms', (extract(epoch FROM audit.created_at) * 1000)::bigint)::text) END AS notified
FROM allowed
LEFT JOIN (audit JOIN per_user USING (user_id)) ON true";

/// Names [`REVOKE`] in the connection's statement cache: parsed once per connection (and
/// planned once on the revocation lane's connections: [`crate::priority::RevocationPool`]).
struct RevokeStatement;

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
    effect: Effect<'_>,
) -> Result<Vec<Outcome>, RevokeError> {
    let (mut user, mut session, mut idp_session) = (None, None, None);
    let (mut owner, mut keep, mut reason) = (None, None, None);
    match target {
        Target::User(u) => user = Some(u.0),
        Target::Sessions(Sessions::One(id)) => session = Some(id.0),
        Target::Sessions(Sessions::OfIdpSession(sid)) => idp_session = Some(sid),
        Target::Sessions(Sessions::OneOfMine {
            user: u,
            session: s,
            from,
        }) => {
            (owner, session, keep) = (Some(u.0), Some(s.0), Some(from.0));
            reason = Some(FROM_ANOTHER_DEVICE);
        }
        Target::Sessions(Sessions::AllOfMineBut { user: u, keep: k }) => {
            (owner, keep) = (Some(u.0), Some(k.0));
            reason = Some(FROM_ANOTHER_DEVICE);
        }
        Target::Sessions(Sessions::OfUser(u)) => owner = Some(u.0),
    }
    let once = by.single_use;
    let query = diesel::sql_query(REVOKE)
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
        .bind::<Text, _>(effect.action)
        .bind::<Nullable<Jsonb>, _>(effect.detail)
        .bind::<Nullable<Text>, _>(effect.state.as_ref().map(|s| s.to.as_str()))
        .bind::<Nullable<Text>, _>(effect.state.as_ref().map(|s| s.by))
        .bind::<Nullable<Timestamptz>, _>(effect.state.as_ref().map(|s| s.at))
        .bind::<Nullable<Uuid>, _>(owner)
        .bind::<Nullable<Uuid>, _>(keep)
        .bind::<Nullable<Text>, _>(reason);
    let rows: Vec<Revoked> = Prepared::<_, RevokeStatement>::new(query)
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
        Revocation::insert(
            conn,
            &audit_row(org, user, (0, 1), by, Action::Revoke, None),
        )
        .await?;
        Ok(true)
    })
    .await
}

/// An audit row about `user`, for `ended` (sessions, tokens).
fn audit_row<'a>(
    org: OrgId,
    user: UserId,
    (sessions_ended, tokens_revoked): (usize, usize),
    by: Requester<'a>,
    action: Action,
    detail: Option<serde_json::Value>,
) -> NewRevocation<'a> {
    NewRevocation {
        org_id: org,
        user_id: Some(user),
        source: by.source.as_str(),
        actor: by.actor,
        sessions_ended: i32::try_from(sessions_ended).unwrap_or(i32::MAX),
        tokens_revoked: i32::try_from(tokens_revoked).unwrap_or(i32::MAX),
        request_id: by.request_id,
        action,
        detail,
    }
}
