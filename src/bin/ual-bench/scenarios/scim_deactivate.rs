//! SCIM deprovisioning reaching open tabs: N live-logout streams (`GET /events`) from N sessions
//! of N/5 SCIM-provisioned users, half on each of two instances (as in [`super::fanout`]); then
//! users deactivated one after another by `PATCH /scim/v2/Users/{id}` with `active: false` (sent
//! to alternating instances). For each stream of a deactivated user: the time from sending the
//! PATCH to the `logout` event arriving.

use std::time::Instant;

use rand::seq::SliceRandom as _;
use tokio::{sync::oneshot, task::JoinSet};

use super::fanout::{self, LOGOUT, LOST_AFTER, SESSIONS_PER_USER, fill_pools, open_streams};
use crate::{
    fixture::{
        BenchDb, CookieForge, Instance, RawConn, open_files_limit, progress, scim_request,
        seed_org, seed_scim, user_ids, users_sql,
    },
    report::{Latency, Row},
};

/// Streams being opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// Users deactivated before measuring, alternating instances: enough for every pooled database
/// connection of both instances to have run a deactivation (a fresh backend's first statements
/// load catalogs and plans, which a server in service has done).
const WARM_USERS: usize = 64;
/// RFC 7644 §3.5.2 PatchOp deactivating a user.
const DEACTIVATE: &str = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#;

/// One row per stream count.
pub async fn run(stream_counts: &[usize], deactivate_users: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &streams in stream_counts {
        rows.push(run_one(streams, deactivate_users).await?);
    }
    Ok(rows)
}

async fn run_one(streams: usize, deactivate_users: usize) -> anyhow::Result<Row> {
    let users = streams / SESSIONS_PER_USER;
    anyhow::ensure!(users > 0, "at least {SESSIONS_PER_USER} streams");
    let limit = open_files_limit()?;
    anyhow::ensure!(
        limit as usize >= streams + 256,
        "{streams} streams need as many open files; the limit is {limit} (raise `ulimit -n`)"
    );

    progress!(
        "scim-deactivate {streams}: seeding {users} users, {SESSIONS_PER_USER} sessions each"
    );
    let db = BenchDb::create("scim_deactivate")?;
    let forge = CookieForge::new();
    let (token, ids, warm_ids) = {
        let mut conn = db.connect()?;
        seed_org(&mut conn, "https://idp.bench.test")?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!("{}{}", users_sql("s", users), users_sql("warm", WARM_USERS)),
        )?;
        (
            seed_scim(&mut conn)?,
            user_ids(&mut conn, "s", users)?,
            user_ids(&mut conn, "warm", WARM_USERS)?,
        )
    };
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    let env = [forge.env()];
    let instances = [
        Instance::start(&db, &env).await?,
        Instance::start(&db, &env).await?,
    ];
    let addrs = [instances[0].addr, instances[1].addr];
    fill_pools(&addrs, &forge).await?;
    // Warm-up: two users' streams hear their deactivation, then the rest are deactivated.
    let warm_streams = open_streams(&addrs, &forge, "warm", &[0, 1], OPEN_CONCURRENCY).await?;
    let mut warm_waiting = JoinSet::new();
    for mut h in warm_streams {
        warm_waiting.spawn(async move { h.conn.wait_for(LOGOUT).await });
    }
    for (k, id) in warm_ids.iter().enumerate() {
        let addr = addrs[k % 2];
        let request = scim_request(
            addr,
            "PATCH",
            &format!("/Users/{id}"),
            &token,
            Some(DEACTIVATE),
        );
        let answer = RawConn::connect(addr).await?.send(&request).await?;
        anyhow::ensure!(
            matches!(answer.status, 200 | 204),
            "warm-up PATCH answered {}",
            answer.status
        );
    }
    while let Some(done) = tokio::time::timeout(LOST_AFTER, warm_waiting.join_next())
        .await
        .map_err(|_| anyhow::anyhow!("warm-up logout events did not arrive"))?
    {
        done??;
    }

    progress!("scim-deactivate {streams}: opening {streams} streams over 2 instances");
    let all_users: Vec<usize> = (0..users).collect();
    let held = open_streams(&addrs, &forge, "s", &all_users, OPEN_CONCURRENCY).await?;
    let mut arrivals: Vec<Vec<oneshot::Receiver<Instant>>> =
        (0..users).map(|_| Vec::new()).collect();
    let mut readers = JoinSet::new();
    for mut h in held {
        let (tx, rx) = oneshot::channel();
        arrivals[h.user].push(rx);
        readers.spawn(async move {
            if h.conn.wait_for(LOGOUT).await.is_ok() {
                let _ = tx.send(Instant::now());
            }
        });
    }

    let mut targets: Vec<usize> = (0..users).collect();
    targets.shuffle(&mut rand::rng());
    targets.truncate(deactivate_users.min(users));
    progress!(
        "scim-deactivate {streams}: deactivating {} users one after another",
        targets.len()
    );
    let mut scim = [
        RawConn::connect(addrs[0]).await?,
        RawConn::connect(addrs[1]).await?,
    ];
    let (mut all, mut answered, mut lost) = (Vec::new(), Vec::new(), 0usize);
    for (k, &user) in targets.iter().enumerate() {
        let via = k % 2;
        let path = format!("/Users/{}", ids[user]);
        let request = scim_request(addrs[via], "PATCH", &path, &token, Some(DEACTIVATE));
        let sent = Instant::now();
        let answer = scim[via].send(&request).await?;
        answered.push(sent.elapsed());
        anyhow::ensure!(
            matches!(answer.status, 200 | 204),
            "PATCH {path} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        lost += fanout::logouts(sent, std::mem::take(&mut arrivals[user]), &mut all).await;
    }
    drop(readers);

    let answered = Latency::of(answered);
    let row = Row::new("scim-deactivate", format!("{streams} streams, 2 instances"))
        .latency(Latency::of(all))
        .figure("users_deactivated", targets.len() as f64)
        .figure("lost", lost as f64)
        .figure("patch_p50_ms", answered.p50_ms)
        .figure("patch_p99_ms", answered.p99_ms)
        .at_most("lost", 0.0);
    // The latency targets are for 10,000 streams; smaller runs are smoke tests.
    Ok(if streams == 10_000 {
        row.at_most("p50_ms", 5.0).at_most("p99_ms", 15.0)
    } else {
        row
    })
}
