//! Poll delivery (RFC 8936). Each instance looks for polled streams every few seconds and
//! polls each on its own connection while holding a PostgreSQL advisory lock for the stream,
//! so exactly one instance polls a stream at a time (another takes over when it stops). A SET
//! is acknowledged in the next poll only once its effect is committed (or was, before: a
//! replay), refused SETs are reported in `setErrs`, and a SET that failed for now is neither,
//! so the transmitter sends it again. A restart therefore neither loses nor repeats an effect.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel::{
    QueryableByName,
    sql_types::{Bool, Text},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{
    client::{self, ManageError},
    counts::EventCounts,
    effect::Context,
    manage,
    receive::{self, Rejected},
};
use crate::{
    auth::{idp_http::IdpHttp, jwks::JwksCache},
    config::DatabaseUrl,
    db::{
        Pool,
        models::{Delivery, Org, SsfStream},
    },
    metrics::Metrics,
    secret_box::SecretBox,
};

/// How often an instance looks for streams to poll (and retries a lock another instance held).
pub const LOOK_EVERY: Duration = Duration::from_secs(5);
/// The least time between two polls of a stream that returned nothing at once (a transmitter
/// without long polling).
const MIN_GAP: Duration = Duration::from_secs(1);
/// Most SETs asked for in one poll.
const MAX_EVENTS: usize = 50;
/// The longest wait after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Most SETs acknowledged or reported at once.
const MAX_PENDING: usize = 1000;

/// What the poller needs: shared with the HTTP workers of the instance.
#[derive(Clone)]
pub struct Poller {
    pub database_url: DatabaseUrl,
    pub pool: Pool,
    pub http: IdpHttp,
    pub jwks: Arc<JwksCache>,
    pub secrets: SecretBox,
    pub metrics: Arc<Metrics>,
    pub counts: Arc<EventCounts>,
}

/// Looks for polled streams for ever, polling each this instance can lock.
pub async fn run(poller: Poller) {
    let polling: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
    loop {
        match polled_streams(&poller.pool).await {
            Ok(ids) => {
                for id in ids {
                    if polling.lock().expect("never poisoned").insert(id) {
                        let (poller, polling) = (poller.clone(), polling.clone());
                        tokio::spawn(async move {
                            if let Err(e) = poll_while_locked(&poller, id).await {
                                tracing::warn!(stream = %id, error = %e, "stopped polling a Shared Signals stream");
                            }
                            polling.lock().expect("never poisoned").remove(&id);
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the Shared Signals streams to poll"),
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

async fn polled_streams(pool: &Pool) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut conn = pool.get().await?;
    Ok(SsfStream::polled(&mut conn)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect())
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Polls stream `id` as long as this instance holds its lock and the stream is polled.
async fn poll_while_locked(poller: &Poller, id: uuid::Uuid) -> anyhow::Result<()> {
    // A connection of its own: the lock lives as long as it does (and goes with it if it breaks).
    let mut conn = AsyncPgConnection::establish(poller.database_url.expose()).await?;
    let locked: Locked =
        diesel::sql_query("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked")
            .bind::<Text, _>(format!("ssf-poll {id}"))
            .get_result(&mut conn)
            .await?;
    if !locked.locked {
        return Ok(()); // another instance polls it
    }
    tracing::info!(stream = %id, "polling a Shared Signals stream");
    let mut pending = Pending::default();
    let mut backoff = Duration::ZERO;
    loop {
        let Some(stream) = SsfStream::find(&mut conn, id).await? else {
            return Ok(());
        };
        if stream.delivery != Delivery::Poll {
            return Ok(());
        }
        let Some(org) = Org::find(&mut conn, stream.org_id).await? else {
            return Ok(());
        };
        let started = Instant::now();
        match poll_once(poller, &mut conn, &org, &stream, &mut pending).await {
            Ok(more) => {
                backoff = Duration::ZERO;
                if !more && started.elapsed() < MIN_GAP {
                    tokio::time::sleep(MIN_GAP - started.elapsed()).await;
                }
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(org = %org.slug, error = %why, "a Shared Signals poll failed");
                SsfStream::record_error(&mut conn, stream.id, &why).await?;
                backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// What the next poll tells the transmitter.
#[derive(Default)]
struct Pending {
    ack: Vec<String>,
    errors: Map<String, Value>,
}

/// One poll: acknowledges and reports what was pending, processes what comes back; whether
/// more is waiting.
async fn poll_once(
    poller: &Poller,
    conn: &mut AsyncPgConnection,
    org: &Org,
    stream: &SsfStream,
    pending: &mut Pending,
) -> Result<bool, ManageError> {
    let endpoint = stream
        .poll_endpoint
        .as_deref()
        .ok_or_else(|| ManageError::Transmitter("the stream has no poll endpoint".into()))?;
    let mut request = json!({ "maxEvents": MAX_EVENTS, "returnImmediately": false });
    if !pending.ack.is_empty() {
        request["ack"] = json!(pending.ack);
    }
    if !pending.errors.is_empty() {
        request["setErrs"] = Value::Object(pending.errors.clone());
    }
    let bearer = manage::bearer(&poller.secrets, stream)?;
    let answer = client::call(
        &poller.http,
        Method::POST,
        endpoint,
        bearer.as_ref(),
        Some(&request),
    )
    .await?;
    // The transmitter has them now.
    *pending = Pending::default();
    let sets = match answer.get("sets") {
        Some(Value::Object(sets)) => sets.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            return Err(ManageError::Transmitter(
                "the poll answer's sets is not an object".into(),
            ));
        }
    };
    let more = answer
        .get("moreAvailable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let request_id = format!("poll-{}", uuid::Uuid::new_v4().simple());
    let cx = Context {
        org,
        stream,
        request_id: &request_id,
        metrics: &poller.metrics,
        counts: &poller.counts,
    };
    let mut retry = HashMap::new();
    for (jti, token) in sets.iter().take(MAX_PENDING) {
        let Some(token) = token.as_str() else {
            pending.errors.insert(
                jti.clone(),
                set_error("invalid_request", "the SET is not a string"),
            );
            continue;
        };
        match receive::process(conn, &cx, &poller.jwks, token).await {
            Ok(_) | Err(Rejected::Replayed) => pending.ack.push(jti.clone()),
            Err(Rejected::Refused(code, why)) => {
                pending
                    .errors
                    .insert(jti.clone(), set_error(code.as_str(), &why));
            }
            Err(Rejected::Retry(why)) => {
                retry.insert(jti.clone(), why);
            }
        }
    }
    if let Some((_, why)) = retry.into_iter().next() {
        // Acknowledge what was done, then wait before the SETs that failed come back.
        return Err(ManageError::Transmitter(why));
    }
    Ok(more || !sets.is_empty())
}

fn set_error(err: &str, description: &str) -> Value {
    json!({ "err": err, "description": description })
}
