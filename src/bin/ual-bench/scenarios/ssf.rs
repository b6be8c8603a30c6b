//! Shared Signals push (RFC 8935), signature checked on every SET.
//!
//! `latency`: N live-logout streams from N sessions of N/5 users, half on each of two instances
//! (as in [`super::fanout`]); then users signed out one after another by a pushed CAEP
//! session-revoked (Okta's shape, sent to alternating instances). For each stream of the user:
//! the time from sending the SET to the `logout` event arriving.
//!
//! `sustained`: C transmitter connections push session-revoked SETs (each for another user with
//! five sessions) to one instance as fast as it answers; SETs accepted (202) per second.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use rand::seq::SliceRandom as _;
use tokio::{sync::oneshot, task::JoinSet};

use super::fanout::{self, LOGOUT, LOST_AFTER, SESSIONS_PER_USER, fill_pools, open_streams};
use crate::{
    fixture::{
        BenchDb, CookieForge, CpuMeter, Idp, Instance, RawConn, SSF_AUDIENCE, email,
        open_files_limit, progress, seed_org, seed_ssf, ssf_request, users_sql,
    },
    report::{Latency, Row},
};

/// Streams being opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// Users signed out before measuring, alternating instances (warms pools, plans, key caches).
const WARM_USERS: usize = 64;
/// Signs one session-revoked SET per email, on the blocking threads (RSA signing is the load
/// generator's cost, paid before the clock starts).
async fn sign_all(idp: &Arc<Idp>, emails: Vec<String>) -> anyhow::Result<Vec<String>> {
    let chunks: Vec<Vec<String>> = emails
        .chunks(emails.len().div_ceil(2).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut signing = Vec::new();
    for chunk in chunks {
        let idp = idp.clone();
        signing.push(tokio::task::spawn_blocking(move || {
            chunk
                .iter()
                .map(|e| idp.session_revoked(SSF_AUDIENCE, e))
                .collect::<Vec<_>>()
        }));
    }
    let mut sets = Vec::new();
    for chunk in signing {
        sets.extend(chunk.await?);
    }
    Ok(sets)
}

/// Push to tab: one row.
pub async fn latency(streams: usize, revoke_users: usize) -> anyhow::Result<Row> {
    let users = streams / SESSIONS_PER_USER;
    anyhow::ensure!(users > 0, "at least {SESSIONS_PER_USER} streams");
    let limit = open_files_limit()?;
    anyhow::ensure!(
        limit as usize >= streams + 256,
        "{streams} streams need as many open files; the limit is {limit} (raise `ulimit -n`)"
    );
    progress!("ssf-push {streams}: seeding {users} users, {SESSIONS_PER_USER} sessions each");
    let idp = Arc::new(Idp::start().await?);
    let db = BenchDb::create("ssf_push")?;
    let forge = CookieForge::new();
    let header = {
        let mut conn = db.connect()?;
        seed_org(&mut conn, &idp.issuer)?;
        seed_ssf(&mut conn, &idp.issuer)?
    };
    db.execute(format!(
        "{}{}",
        users_sql("s", users),
        users_sql("warm", WARM_USERS)
    ))
    .await?;
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    let env = [forge.env()];
    let instances = [
        Instance::start(&db, &env).await?,
        Instance::start(&db, &env).await?,
    ];
    let addrs = [instances[0].addr, instances[1].addr];
    fill_pools(&addrs, &forge).await?;

    let warm_sets = sign_all(&idp, (0..WARM_USERS).map(|i| email("warm", i)).collect()).await?;
    let warm_streams = open_streams(&addrs, &forge, "warm", &[0, 1], OPEN_CONCURRENCY).await?;
    let mut warm_waiting = JoinSet::new();
    for mut h in warm_streams {
        warm_waiting.spawn(async move { h.conn.wait_for(LOGOUT).await });
    }
    for (k, set) in warm_sets.iter().enumerate() {
        let addr = addrs[k % 2];
        let answer = RawConn::connect(addr)
            .await?
            .send(&ssf_request(addr, &header, set))
            .await?;
        anyhow::ensure!(
            answer.status == 202,
            "warm-up push answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    while let Some(done) = tokio::time::timeout(LOST_AFTER, warm_waiting.join_next())
        .await
        .map_err(|_| anyhow::anyhow!("warm-up logout events did not arrive"))?
    {
        done??;
    }

    let mut targets: Vec<usize> = (0..users).collect();
    targets.shuffle(&mut rand::rng());
    targets.truncate(revoke_users.min(users));
    let sets = sign_all(&idp, targets.iter().map(|&u| email("s", u)).collect()).await?;

    progress!("ssf-push {streams}: opening {streams} streams over 2 instances");
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

    progress!(
        "ssf-push {streams}: pushing session-revoked for {} users one after another",
        targets.len()
    );
    let mut conns = [
        RawConn::connect(addrs[0]).await?,
        RawConn::connect(addrs[1]).await?,
    ];
    let (mut all, mut answered, mut lost) = (Vec::new(), Vec::new(), 0usize);
    for (k, (&user, set)) in targets.iter().zip(&sets).enumerate() {
        let via = k % 2;
        let request = ssf_request(addrs[via], &header, set);
        let sent = Instant::now();
        let answer = conns[via].send(&request).await?;
        answered.push(sent.elapsed());
        anyhow::ensure!(
            answer.status == 202,
            "push answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        lost += fanout::logouts(sent, std::mem::take(&mut arrivals[user]), &mut all).await;
    }
    drop(readers);

    let answered = Latency::of(answered);
    let row = Row::new("ssf-push", format!("{streams} streams, 2 instances"))
        .latency(Latency::of(all))
        .figure("users_signed_out", targets.len() as f64)
        .figure("lost", lost as f64)
        .figure("push_p50_ms", answered.p50_ms)
        .figure("push_p99_ms", answered.p99_ms)
        .at_most("lost", 0.0);
    Ok(if streams == 10_000 {
        row.at_most("p50_ms", 5.0).at_most("p99_ms", 15.0)
    } else {
        row
    })
}

/// SETs accepted per second: one row.
pub async fn sustained(sets: usize, connections: usize) -> anyhow::Result<Row> {
    progress!("ssf-sustained: seeding {sets} users, {SESSIONS_PER_USER} sessions each");
    let idp = Arc::new(Idp::start().await?);
    let db = BenchDb::create("ssf_sustained")?;
    let forge = CookieForge::new();
    let header = {
        let mut conn = db.connect()?;
        seed_org(&mut conn, &idp.issuer)?;
        seed_ssf(&mut conn, &idp.issuer)?
    };
    db.execute(format!(
        "{}{}",
        users_sql("s", sets),
        users_sql("warm", WARM_USERS)
    ))
    .await?;
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    let instance = Instance::start(&db, &[forge.env()]).await?;
    let addr = instance.addr;
    let warm = sign_all(&idp, (0..WARM_USERS).map(|i| email("warm", i)).collect()).await?;
    for set in &warm {
        let answer = RawConn::connect(addr)
            .await?
            .send(&ssf_request(addr, &header, set))
            .await?;
        anyhow::ensure!(
            answer.status == 202,
            "warm-up push answered {}",
            answer.status
        );
    }
    progress!("ssf-sustained: signing {sets} SETs");
    let signed = Arc::new(sign_all(&idp, (0..sets).map(|i| email("s", i)).collect()).await?);
    db.settle().await?;

    progress!("ssf-sustained: {connections} connections push {sets} SETs");
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = CpuMeter::new(&[&instance], &db);
    let before = cpu.sample();
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for _ in 0..connections {
        let (next, signed, header) = (next.clone(), signed.clone(), header.clone());
        callers.spawn(async move {
            let mut conn = RawConn::connect(addr).await?;
            let mut took = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(set) = signed.get(i) else { break };
                let sent = Instant::now();
                let answer = conn.send(&ssf_request(addr, &header, set)).await?;
                anyhow::ensure!(answer.status == 202, "push answered {}", answer.status);
                took.push(sent.elapsed());
            }
            anyhow::Ok(took)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = callers.join_next().await {
        all.extend(done??);
    }
    let elapsed = started.elapsed();
    let share = cpu.sample().since(&before);
    let accepted = all.len();
    let per_second = accepted as f64 / elapsed.as_secs_f64();
    Ok(Row::new(
        "ssf-sustained",
        format!("{connections} connections, 1 instance"),
    )
    .latency(Latency::of(all))
    .figure("sets_accepted", accepted as f64)
    .figure("sets_per_s", per_second)
    .figures(share.per_op(accepted))
    .figures(share.figures(""))
    .at_least("sets_per_s", 500.0))
}
