//! actix-session's [`SessionStore`] on the PostgreSQL `sessions` table.
//!
//! The promises, each tested in `tests/api/session_store.rs`:
//! - the cookie carries a random key; the row's primary key is its SHA-256, so the table holds no
//!   usable cookie;
//! - `load` ignores expired rows; the idle deadline moves with `last_seen_at`, written at most once
//!   per [`TOUCH_INTERVAL`], never past the absolute lifetime;
//! - `update` only updates: a row deleted while one of its requests was in flight (a revocation)
//!   stays deleted, unlike actix-session's Redis store, which would save it again.

use std::{collections::HashMap, rc::Rc, time::Duration};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use anyhow::Context as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    db::{
        Pool,
        ids::{OrgId, SessionId, UserId},
        models::{
            Todo,
            session::{LiveSession, NewSession, SessionRecord},
            session_page,
        },
        pipelined::PipelinedConnection,
    },
    prefetch,
    priority::PageHold,
};

/// Where actix-identity keeps the signed-in user's id in the session state.
pub const IDENTITY_KEY: &str = "actix_identity.user_id";
/// Where sign-in keeps [`SessionMeta`] in the session state.
pub const META_KEY: &str = "meta";
/// Set in a loaded session's state (never stored in it) while the session must authenticate
/// again before going on; the `sessions.reauth_requested_at` column is the truth.
pub const REAUTH_KEY: &str = "reauth";
/// `last_seen_at` (and with it the idle deadline) is written at most this often per session.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// What sign-in records about a session, besides the user's id. The store copies it into
/// columns so sessions can be listed and ended without reading their state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub id: SessionId,
    pub org_id: OrgId,
    pub email: String,
    pub is_admin: bool,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    #[serde(default)]
    pub oidc_sid: Option<String>,
    /// What the IdP said of a session signed in through SSO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<IdpSession>,
}

/// A sign-in through the org's IdP, as its ID token told it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpSession {
    /// When the person authenticated at the IdP (Unix seconds).
    pub auth_time: Option<i64>,
    /// When the IdP's session ends (`session_expiry`, Unix seconds).
    pub ends_at: Option<i64>,
    /// The ID token, sent back as `id_token_hint` at sign-out.
    pub id_token: String,
}

impl IdpSession {
    fn time(seconds: Option<i64>) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(seconds?).ok()
    }
}

/// The session store. Cheap to clone: it holds the pool.
#[derive(Clone)]
pub struct PgSessionStore {
    pool: Pool,
    /// Reads a page view's session and todos, when the worker has one (see [`crate::db::pipelined`]).
    page_reads: Option<Rc<PipelinedConnection>>,
    /// Page reads wait on it while a revocation is written (see [`crate::priority`]).
    page_hold: Option<PageHold>,
    idle_timeout: Duration,
    lifetime: Duration,
}

impl PgSessionStore {
    pub fn new(pool: Pool, idle_timeout: Duration, lifetime: Duration) -> Self {
        Self {
            pool,
            page_reads: None,
            page_hold: None,
            idle_timeout,
            lifetime,
        }
    }

    /// Page views read through `conn`, shared by the worker's page views, rather than the pool.
    pub fn with_page_reads(self, conn: PipelinedConnection) -> Self {
        Self {
            page_reads: Some(Rc::new(conn)),
            ..self
        }
    }

    /// Page reads give way to the revocations that `hold` announces.
    pub fn with_page_hold(self, hold: PageHold) -> Self {
        Self {
            page_hold: Some(hold),
            ..self
        }
    }

    /// A page view's session and todos, through the worker's shared connection if it has one.
    async fn read_page(
        &self,
        id: &[u8],
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<(LiveSession, Vec<Todo>)>> {
        if let Some(hold) = &self.page_hold {
            hold.wait().await;
        }
        let Some(shared) = &self.page_reads else {
            let conn = self.conn().await?;
            return Ok(session_page::find_live_with_todos(&conn, id, now).await?);
        };
        shared
            .read(async |conn| session_page::find_live_with_todos(conn, id, now).await)
            .await
    }

    /// The row's primary key for a cookie's session key.
    pub fn hash_key(key: &str) -> Vec<u8> {
        Sha256::digest(key.as_bytes()).to_vec()
    }

    /// When a session last active at `seen` ends: idle deadline, capped by the absolute lifetime.
    fn expires_at(&self, created: OffsetDateTime, seen: OffsetDateTime) -> OffsetDateTime {
        (seen + self.idle_timeout).min(created + self.lifetime)
    }

    async fn conn(&self) -> anyhow::Result<crate::db::PooledConnection> {
        self.pool
            .get()
            .await
            .context("no database connection for the session store")
    }
}

type State = HashMap<String, String>;

/// The user id and metadata found in a session's state, if it is signed in.
fn columns(state: &State) -> (Option<UserId>, Option<SessionMeta>) {
    let user = state
        .get(IDENTITY_KEY)
        .and_then(|v| serde_json::from_str::<String>(v).ok())
        .and_then(|v| v.parse().ok());
    let meta = state
        .get(META_KEY)
        .and_then(|v| serde_json::from_str(v).ok());
    (user, meta)
}

/// A session row as the store saves it, owning what [`NewSession`] borrows: the one place that
/// knows the row's format (key hash, state, the columns copied out of it), so whatever writes
/// session rows (the store; the bench, seeding millions) writes them alike.
pub struct SessionRow {
    id: Vec<u8>,
    public_id: SessionId,
    user_id: Option<UserId>,
    meta: Option<SessionMeta>,
    state: serde_json::Value,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl SessionRow {
    /// The row of the session whose cookie carries `key` and whose state is `state`, saved at
    /// `now` and ending at `expires_at`.
    fn new(
        key: &str,
        state: &State,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> serde_json::Result<Self> {
        let (user_id, meta) = columns(state);
        let idp_ends_at = meta
            .as_ref()
            .and_then(|m| m.idp.as_ref())
            .and_then(|idp| IdpSession::time(idp.ends_at));
        let expires_at = idp_ends_at.map_or(expires_at, |end| expires_at.min(end));
        Ok(Self {
            id: PgSessionStore::hash_key(key),
            public_id: meta.as_ref().map_or_else(SessionId::new, |m| m.id),
            user_id,
            meta,
            state: serde_json::to_value(state)?,
            created_at: now,
            expires_at,
        })
    }

    /// The row of a session in which `user_id` has just signed in with `meta`, as sign-in
    /// leaves it (actix-identity's user id and the meta, each JSON-encoded in the state): a
    /// cookie carrying `key` loads it as that user's signed-in session.
    pub fn signed_in(
        key: &str,
        user_id: UserId,
        meta: &SessionMeta,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        let state = State::from([
            (
                IDENTITY_KEY.to_owned(),
                serde_json::to_string(&user_id.to_string()).expect("a string encodes"),
            ),
            (
                META_KEY.to_owned(),
                serde_json::to_string(meta).expect("SessionMeta encodes: no maps, no floats"),
            ),
        ]);
        Self::new(key, &state, now, expires_at).expect("a map of strings encodes")
    }

    /// The row to insert, borrowing from this one.
    pub fn to_insert(&self) -> NewSession<'_> {
        let meta = self.meta.as_ref();
        NewSession {
            id: &self.id,
            public_id: self.public_id,
            user_id: self.user_id,
            org_id: meta.map(|m| m.org_id),
            state: &self.state,
            oidc_sid: meta.and_then(|m| m.oidc_sid.as_deref()),
            user_agent: meta.and_then(|m| m.user_agent.as_deref()),
            ip: meta.and_then(|m| m.ip.as_deref()),
            created_at: self.created_at,
            last_seen_at: self.created_at,
            expires_at: self.expires_at,
            auth_time: meta
                .and_then(|m| m.idp.as_ref())
                .and_then(|idp| IdpSession::time(idp.auth_time)),
            idp_ends_at: meta
                .and_then(|m| m.idp.as_ref())
                .and_then(|idp| IdpSession::time(idp.ends_at)),
            method: meta.map(|m| if m.idp.is_some() { "sso" } else { "password" }),
            // Set by the insert, which knows the user's devices.
            new_device: false,
        }
    }
}

impl SessionStore for PgSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let id = Self::hash_key(key.as_ref());
        let now = OffsetDateTime::now_utc();
        let found = if prefetch::wants_todos() {
            self.read_page(&id, now).await.map(|found| {
                found.map(|(row, todos)| {
                    prefetch::put_todos(todos);
                    row
                })
            })
        } else {
            let mut conn = self.conn().await.map_err(LoadError::Other)?;
            SessionRecord::find_live(&mut conn, &id, now)
                .await
                .map_err(anyhow::Error::from)
        };
        let Some(row) = found
            .context("cannot read the session")
            .map_err(LoadError::Other)?
        else {
            return Ok(None);
        };
        if now - row.last_seen_at >= TOUCH_INTERVAL {
            let mut expires_at = self.expires_at(row.created_at, now);
            if let Some(end) = row.idp_ends_at {
                expires_at = expires_at.min(end);
            }
            let mut conn = self.conn().await.map_err(LoadError::Other)?;
            SessionRecord::touch(&mut conn, &id, now, expires_at)
                .await
                .context("cannot record session activity")
                .map_err(LoadError::Other)?;
        }
        let mut state: State = serde_json::from_slice(&row.state.0)
            .map_err(|e| LoadError::Deserialization(e.into()))?;
        if row.reauth_requested_at.is_some() {
            state.insert(REAUTH_KEY.to_owned(), "true".to_owned());
        } else {
            state.remove(REAUTH_KEY);
        }
        Ok(Some(state))
    }

    async fn save(&self, mut state: State, _ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        state.remove(REAUTH_KEY);
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let key = hex::encode(raw);
        let now = OffsetDateTime::now_utc();
        let row = SessionRow::new(&key, &state, now, self.expires_at(now, now))
            .map_err(|e| SaveError::Serialization(e.into()))?;
        let mut conn = self.conn().await.map_err(SaveError::Other)?;
        let saved = SessionRecord::insert(&mut conn, &row.to_insert())
            .await
            .context("cannot save the session")
            .map_err(SaveError::Other)?;
        if !saved {
            // The user was suspended or deleted while signing in: no session. The cookie keeps a
            // key that loads nothing, so the next request is anonymous.
            tracing::info!("the user is not active; session not saved");
        }
        SessionKey::try_from(key).map_err(|e| SaveError::Other(anyhow::Error::new(e)))
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let id = Self::hash_key(key.as_ref());
        let mut state = state;
        state.remove(REAUTH_KEY);
        let json =
            serde_json::to_value(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let mut conn = self.conn().await.map_err(UpdateError::Other)?;
        let updated = SessionRecord::update_state(&mut conn, &id, &json, OffsetDateTime::now_utc())
            .await
            .context("cannot update the session")
            .map_err(UpdateError::Other)?;
        if !updated {
            // Ended (revoked, signed out or expired) while this request ran: it stays ended. The
            // cookie keeps a key that no longer loads anything, so the next request is anonymous.
            tracing::info!("session ended during the request; not re-created");
        }
        Ok(key)
    }

    async fn update_ttl(&self, _key: &SessionKey, _ttl: &CookieDuration) -> anyhow::Result<()> {
        // Activity is recorded by `load`, at most once per TOUCH_INTERVAL; nothing to do here.
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        let id = Self::hash_key(key.as_ref());
        let mut conn = self.conn().await?;
        SessionRecord::delete(&mut conn, &id)
            .await
            .context("cannot delete the session")
    }
}
