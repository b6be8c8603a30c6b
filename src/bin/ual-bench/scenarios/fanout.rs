//! Revocation fan-out: N live-logout streams (`GET /events`) from N sessions of N/5 users, half
//! on each of two instances, then users revoked one after another through Universal Logout (sent
//! to alternating instances). For each stream of a revoked user: the time from sending the
//! request to the `logout` event arriving. Also the servers' memory per open stream.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use rand::seq::SliceRandom as _;
use tokio::{sync::oneshot, task::JoinSet};

use crate::{
    fixture::{
        BenchDb, CookieForge, CpuMeter, Instance, RawConn, WaitSampler, email, get_request,
        open_files_limit, progress, seed_org, session_key, ual_request, users_sql,
    },
    report::{Latency, Row},
};

pub const SESSIONS_PER_USER: usize = 5;
/// Streams being opened at once (each costs the server two queries).
const OPEN_CONCURRENCY: usize = 256;
/// The instances' database pool size (the app's default).
const POOL_SIZE: usize = 16;
/// Read size of an idle stream: keep-alive comments and one event are all it ever gets.
const STREAM_READ_SIZE: usize = 256;
/// How long a logout may take before it counts as lost.
pub const LOST_AFTER: Duration = Duration::from_secs(5);
pub const LOGOUT: &[u8] = b"event: logout";

/// One row per stream count.
pub async fn run(stream_counts: &[usize], revoke_users: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &streams in stream_counts {
        rows.push(run_one(streams, revoke_users).await?);
    }
    Ok(rows)
}

/// A stream the bench holds open, and which instance serves it.
pub struct Held {
    pub user: usize,
    pub instance: usize,
    pub conn: RawConn,
}

async fn run_one(streams: usize, revoke_users: usize) -> anyhow::Result<Row> {
    let users = streams / SESSIONS_PER_USER;
    anyhow::ensure!(users > 0, "at least {SESSIONS_PER_USER} streams");
    let limit = open_files_limit()?;
    anyhow::ensure!(
        limit as usize >= streams + 256,
        "{streams} streams need as many open files; the limit is {limit} (raise `ulimit -n`)"
    );

    progress!("fanout {streams}: seeding {users} users with {SESSIONS_PER_USER} sessions each");
    let db = BenchDb::create("fanout")?;
    let forge = CookieForge::new();
    let api_key = seed_org(&mut db.connect()?, "https://idp.bench.test")?;
    db.execute(format!("{}{}", users_sql("f", users), users_sql("warm", 2)))
        .await?;
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    let env = [forge.env()];
    let instances = [
        Instance::start(&db, &env).await?,
        Instance::start(&db, &env).await?,
    ];
    let addrs = [instances[0].addr, instances[1].addr];

    warm_up(&addrs, &forge, &api_key).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before: u64 = instances
        .iter()
        .map(|i| i.rss_kib())
        .sum::<anyhow::Result<_>>()?;

    progress!("fanout {streams}: opening {streams} streams over 2 instances");
    let opening = Instant::now();
    let all_users: Vec<usize> = (0..users).collect();
    let held = open_streams(&addrs, &forge, "f", &all_users, OPEN_CONCURRENCY).await?;
    let open_seconds = opening.elapsed().as_secs_f64();
    progress!(
        "fanout {streams}: {} streams open in {open_seconds:.1}s",
        held.len()
    );

    // Each stream waits for its logout in a task of its own and reports when it came.
    let mut arrivals: Vec<Vec<(usize, oneshot::Receiver<Instant>)>> =
        (0..users).map(|_| Vec::new()).collect();
    let mut readers = JoinSet::new();
    for mut h in held {
        let (tx, rx) = oneshot::channel();
        arrivals[h.user].push((h.instance, rx));
        readers.spawn(async move {
            if h.conn.wait_for(LOGOUT).await.is_ok() {
                let _ = tx.send(Instant::now());
            }
        });
    }

    // Idle: every stream open, nothing happening but keep-alive comments.
    let meter = CpuMeter::new(&[&instances[0], &instances[1]], &db);
    let idle_start = meter.sample();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = meter.sample().since(&idle_start);
    let rss_after: u64 = instances
        .iter()
        .map(|i| i.rss_kib())
        .sum::<anyhow::Result<_>>()?;
    let kib_per_stream = rss_after.saturating_sub(rss_before) as f64 / streams as f64;
    progress!(
        "fanout {streams}: servers' RSS {:.1} → {:.1} MiB: {kib_per_stream:.1} KiB per stream",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );

    let mut targets: Vec<usize> = (0..users).collect();
    targets.shuffle(&mut rand::rng());
    targets.truncate(revoke_users.min(users));
    progress!(
        "fanout {streams}: revoking {} users one after another",
        targets.len()
    );
    // Connected now: an instance closes a connection idle for five seconds.
    let mut ual = [
        RawConn::connect(addrs[0]).await?,
        RawConn::connect(addrs[1]).await?,
    ];
    let waits = WaitSampler::start(&db)?;
    let cpu_start = meter.sample();
    let (mut all, mut local, mut remote, mut answered) = (vec![], vec![], vec![], vec![]);
    let (mut lost, mut before_204) = (0usize, 0usize);
    for (k, &user) in targets.iter().enumerate() {
        let via = k % 2;
        let request = ual_request(addrs[via], &api_key, &email("f", user));
        let sent = Instant::now();
        let answer = ual[via].send(&request).await?;
        let answered_at = Instant::now();
        answered.push(answered_at - sent);
        anyhow::ensure!(answer.status == 204, "UAL answered {}", answer.status);
        for (instance, rx) in std::mem::take(&mut arrivals[user]) {
            match tokio::time::timeout(LOST_AFTER, rx).await {
                Ok(Ok(at)) => {
                    before_204 += usize::from(at < answered_at);
                    let took = at - sent;
                    all.push(took);
                    if instance == via {
                        local.push(took);
                    } else {
                        remote.push(took);
                    }
                }
                _ => lost += 1,
            }
        }
    }
    let cpu = meter.sample().since(&cpu_start);
    let waits = waits.finish()?;
    drop(readers);

    let (answered, local, remote) = (
        Latency::of(answered),
        Latency::of(local),
        Latency::of(remote),
    );
    let row = Row::new("fanout", format!("{streams} streams, 2 instances"))
        .latency(Latency::of(all))
        .figure("users_revoked", targets.len() as f64)
        .figure("lost", lost as f64)
        .figure("same_instance_p99_ms", local.p99_ms)
        .figure("other_instance_p99_ms", remote.p99_ms)
        .figure("ual_204_p50_ms", answered.p50_ms)
        .figure("ual_204_p99_ms", answered.p99_ms)
        .figure(
            "logout_before_204_pct",
            before_204 as f64 * 100.0 / (targets.len() * SESSIONS_PER_USER) as f64,
        )
        .figure("kib_per_stream", kib_per_stream)
        .figure("rss_before_mib", rss_before as f64 / 1024.0)
        .figure("rss_after_mib", rss_after as f64 / 1024.0)
        .figure("open_s", open_seconds)
        .figure("idle_cpu_app%", idle.app)
        .figures(cpu.per_op(targets.len()))
        .figures(cpu.figures(""))
        .figures(waits.figures(3))
        .at_most("kib_per_stream", 16.0)
        .at_most("lost", 0.0);
    // The latency targets are for 10,000 streams; other sizes show how cost grows.
    Ok(if streams == 10_000 {
        row.at_most("p50_ms", 3.0).at_most("p99_ms", 10.0)
    } else {
        row
    })
}

/// Warms the instances up before a memory baseline: each instance's database pool grows to the
/// size the opening burst needs, and each serves streams and a revocation (users `warm0`,
/// `warm1`… with five sessions each, one per instance), so that the figure is for streams, not
/// for the pool (which is bounded, whatever the number of streams).
pub async fn warm_up(
    addrs: &[SocketAddr],
    forge: &CookieForge,
    api_key: &str,
) -> anyhow::Result<()> {
    fill_pools(addrs, forge).await?;
    for w in 0..addrs.len() {
        let held = open_streams(addrs, forge, "warm", &[w], OPEN_CONCURRENCY).await?;
        let mut waiting = JoinSet::new();
        for mut h in held {
            waiting.spawn(async move { h.conn.wait_for(LOGOUT).await });
        }
        let answer = RawConn::connect(addrs[w])
            .await?
            .send(&ual_request(addrs[w], api_key, &email("warm", w)))
            .await?;
        anyhow::ensure!(
            answer.status == 204,
            "warm-up UAL answered {}",
            answer.status
        );
        while let Some(done) = tokio::time::timeout(LOST_AFTER, waiting.join_next())
            .await
            .context("warm-up logout events did not arrive")?
        {
            done??;
        }
    }
    // Every pooled connection (and its PostgreSQL backend) has run a revocation once: a fresh
    // backend's first statements load catalogs and plans, which a server in service has done.
    for &addr in addrs {
        for _ in 0..2 * POOL_SIZE {
            let answer = RawConn::connect(addr)
                .await?
                .send(&ual_request(addr, api_key, &email("warm", 0)))
                .await?;
            anyhow::ensure!(
                answer.status == 204,
                "warm-up UAL answered {}",
                answer.status
            );
        }
    }
    Ok(())
}

/// Requests pages, twice as many at a time as an instance pools database connections, so that
/// each instance opens the pooled connections the opening burst will use. Only a few requests:
/// the memory their connections free would otherwise be counted as free for streams.
pub async fn fill_pools(addrs: &[SocketAddr], forge: &CookieForge) -> anyhow::Result<()> {
    let in_flight = 4 * POOL_SIZE;
    let cookie = forge.cookie(&session_key(&email("warm", 0), 1));
    let cookie = &cookie;
    stream::iter((0..2 * in_flight).map(|i| addrs[i % addrs.len()]))
        .map(|addr| async move {
            let answer = RawConn::connect(addr)
                .await?
                .send(&get_request(addr, "/todos", Some(cookie)))
                .await?;
            anyhow::ensure!(
                answer.status == 200,
                "GET /todos answered {}",
                answer.status
            );
            Ok(())
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Opens a live-logout stream for every seeded session of the given users (`<prefix><i>`): the
/// user's `n`th session on instance `(i + n) % instances`, so each user has streams on several.
pub async fn open_streams(
    addrs: &[SocketAddr],
    forge: &CookieForge,
    prefix: &str,
    users: &[usize],
    concurrency: usize,
) -> anyhow::Result<Vec<Held>> {
    let specs: Vec<(usize, usize, Vec<u8>)> = users
        .iter()
        .flat_map(|&user| {
            let email = email(prefix, user);
            (1..=SESSIONS_PER_USER)
                .map(|n| {
                    let instance = (user + n) % addrs.len();
                    let cookie = forge.cookie(&session_key(&email, n));
                    let request = get_request(addrs[instance], "/events", Some(&cookie));
                    (user, instance, request)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    stream::iter(specs)
        .map(|(user, instance, request)| async move {
            let mut conn = RawConn::connect_with(addrs[instance], STREAM_READ_SIZE).await?;
            let status = conn.open_stream(&request).await?;
            anyhow::ensure!(status == 200, "GET /events answered {status}");
            Ok(Held {
                user,
                instance,
                conn,
            })
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// Waits for the `logout` of each stream in `streams` (a revocation sent at `sent`): how long
/// each took goes to `told`; returns how many never came within [`LOST_AFTER`].
pub async fn logouts(
    sent: Instant,
    streams: Vec<oneshot::Receiver<Instant>>,
    told: &mut Vec<Duration>,
) -> usize {
    let mut lost = 0;
    for rx in streams {
        match tokio::time::timeout(LOST_AFTER, rx).await {
            Ok(Ok(at)) => told.push(at - sent),
            _ => lost += 1,
        }
    }
    lost
}
