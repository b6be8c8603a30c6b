//! A user's life: suspended, reactivated, deleted, and the break-glass flag. Suspending and
//! deleting end every session and token in the same transaction as the state change (through
//! the revocation statement), so no session outlives it; every change is audited with the state
//! before and after, and announced, so open tabs sign out and dashboards update live.

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use time::OffsetDateTime;

use super::{
    CHANNEL, Effect, NewState, Notice, Outcome, Requester, RevokeError, Target, audit_row, revoke,
};
use crate::db::{
    ids::{AccountState, OrgId, UserId},
    models::{Action, Revocation, SeenJti, SessionRecord, User},
};

/// A state as set: the user afterwards, whether it changed, and what ended.
#[derive(Debug)]
pub struct StateChange {
    pub user: User,
    pub changed: bool,
    /// The sessions and tokens that ended (suspending or deleting).
    pub outcome: Option<Outcome>,
}

/// Puts `user` of `org` into state `to` (`None`: no such user, or already deleted). Suspending
/// or deleting marks the user, ends every session and personal access token, audits and
/// announces it, in one transaction; reactivating brings nothing back. Setting the state a user
/// already has changes and records nothing. A single-use id the requester carries (a SET's
/// `jti`) is spent in the same transaction, whatever the outcome: a replay changes nothing.
pub async fn set_state(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    to: AccountState,
    by: Requester<'_>,
) -> Result<Option<StateChange>, RevokeError> {
    conn.transaction::<_, RevokeError, _>(async |conn| {
        let by = spend(conn, by).await?;
        let Some(found) = User::lock_in_org(conn, org, user).await? else {
            return Ok(None);
        };
        set_locked_state(conn, org, found, to, by).await.map(Some)
    })
    .await
}

/// Spends `by`'s single-use id, if any (inside the caller's transaction), and returns `by`
/// without it, so that nothing later spends it twice.
pub(super) async fn spend<'a>(
    conn: &mut AsyncPgConnection,
    by: Requester<'a>,
) -> Result<Requester<'a>, RevokeError> {
    if let Some(once) = by.single_use
        && !SeenJti::record(conn, once.issuer, once.jti, once.remember_until).await?
    {
        return Err(RevokeError::Replayed);
    }
    Ok(by.spending(None))
}

/// [`set_state`] for a caller already inside a transaction that holds `found`'s row lock
/// ([`User::lock_in_org`]): the same change, without a savepoint or a second lock (SCIM writes
/// change attributes and state in one transaction).
pub async fn set_locked_state(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    found: User,
    to: AccountState,
    by: Requester<'_>,
) -> Result<StateChange, RevokeError> {
    let from = found.state;
    let id = found.id;
    if from == to {
        return Ok(StateChange {
            user: found,
            changed: false,
            outcome: None,
        });
    }
    // Who, as the audit names them, within the column's 256 characters.
    let changed_by: String = format!("{} ({})", by.source.label(), by.actor)
        .chars()
        .take(256)
        .collect();
    let detail = json!({ "before": { "state": from }, "after": { "state": to } });
    let (after, outcome) = match to {
        AccountState::Active => {
            let after = User::reactivate(conn, id, &changed_by).await?;
            announce(conn, org, id, by, Action::Reactivate, detail).await?;
            (after, None)
        }
        AccountState::Suspended | AccountState::Deleted => {
            // The state is set by the revocation statement itself: one round trip, on the row
            // this transaction has locked, so the user afterwards is known without reading it.
            let at = OffsetDateTime::now_utc();
            let effect = Effect {
                action: if to == AccountState::Deleted {
                    Action::Delete
                } else {
                    Action::Suspend
                },
                detail: Some(detail),
                state: Some(NewState {
                    to,
                    by: &changed_by,
                    at,
                }),
            };
            let outcome = revoke(conn, org, Target::User(id), by, effect)
                .await?
                .into_iter()
                .next();
            let after = User {
                state: to,
                state_changed_at: Some(at),
                state_changed_by: Some(changed_by.clone()),
                deleted_at: (to == AccountState::Deleted).then_some(at),
                version: found.version + 1,
                updated_at: at,
                ..found
            };
            (after, outcome)
        }
    };
    tracing::info!(org_id = %org, user_id = %id, state = %to,
        source = by.source.as_str(), "changed a user's state");
    Ok(StateChange {
        user: after,
        changed: true,
        outcome,
    })
}

/// Audits a change that ends nothing and announces it to the org's dashboards.
async fn announce(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    by: Requester<'_>,
    action: Action,
    detail: serde_json::Value,
) -> Result<(), RevokeError> {
    let row = Revocation::insert(
        conn,
        &audit_row(org, user, (0, 0), by, action, Some(detail)),
    )
    .await?;
    let notice = Notice {
        revocation_id: row.id,
        org_id: org,
        user_id: user,
        session_ids: Vec::new(),
        spared_session_id: None,
        source: by.source,
        actor: by.actor.chars().take(200).collect(),
        sessions_ended: 0,
        at_ms: i64::try_from(row.created_at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default(),
        action,
        reason: None,
    };
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(serde_json::to_string(&notice).expect("serialisable"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Asks every session of `user` of `org` to authenticate again before going on (IPSIE SL2
/// "re-establish session"): the sessions are kept, open tabs are told live, audited. Returns how
/// many sessions were asked (`None`: no such user).
pub async fn require_reauth(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    by: Requester<'_>,
) -> Result<Option<usize>, RevokeError> {
    conn.transaction::<_, RevokeError, _>(async |conn| {
        let Some(found) = User::lock_in_org(conn, org, user).await? else {
            return Ok(None);
        };
        let asked = SessionRecord::request_reauth(conn, org, found.id).await?;
        let detail = json!({ "sessions": asked });
        announce(conn, org, found.id, by, Action::Reauth, detail).await?;
        Ok(Some(asked))
    })
    .await
}

/// Marks `user` of `org` as allowed (or not) to sign in with a password although the org has
/// SSO; audited. `None`: no such user.
pub async fn set_break_glass(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    on: bool,
    by: Requester<'_>,
) -> Result<Option<User>, RevokeError> {
    conn.transaction::<_, RevokeError, _>(async |conn| {
        let Some(found) = User::lock_in_org(conn, org, user).await? else {
            return Ok(None);
        };
        if found.break_glass == on {
            return Ok(Some(found));
        }
        let after = User::set_break_glass(conn, found.id, on).await?;
        let detail = json!({ "before": { "break_glass": !on }, "after": { "break_glass": on } });
        let row = audit_row(org, found.id, (0, 0), by, Action::BreakGlass, Some(detail));
        Revocation::insert(conn, &row).await?;
        Ok(Some(after))
    })
    .await
}

/// Records a change to `user` that ends nothing and needs no announcement (SCIM creates and
/// updates), with its before and after.
pub async fn record(
    conn: &mut AsyncPgConnection,
    org: OrgId,
    user: UserId,
    action: Action,
    by: Requester<'_>,
    detail: serde_json::Value,
) -> diesel::QueryResult<()> {
    Revocation::insert(
        conn,
        &audit_row(org, user, (0, 0), by, action, Some(detail)),
    )
    .await
    .map(drop)
}

/// Users deleted longer ago than `retention` are purged (their todos with them); returns how
/// many.
pub async fn purge_deleted(
    conn: &mut AsyncPgConnection,
    retention: time::Duration,
) -> diesel::QueryResult<usize> {
    User::purge_deleted(conn, OffsetDateTime::now_utc() - retention).await
}
