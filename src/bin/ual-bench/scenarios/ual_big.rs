//! Universal Logout under a big sessions table: a million session rows for 100,000 users, and the
//! same at a tenth and at ten times the data, to show that a revocation's cost does not grow with
//! the table.
//! Random users with five sessions each are signed out: one call at a time (org API key, then
//! JWT with the keys cached), then by 32 concurrent callers for about ten seconds.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rand::seq::SliceRandom as _;
use tokio::task::JoinSet;

use crate::{
    fixture::{
        BenchDb, CLIENT_ID, CpuMeter, Idp, Instance, RawConn, WaitSampler, email, progress,
        query_text, seed_org, ual_request, users_sql, wal_bytes, wal_lsn,
    },
    report::{Latency, Row},
};

/// How much data: `users` users holding `rows` sessions, of whom `targets` have five sessions
/// each and are the ones signed out; the others share the remaining rows.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub users: usize,
    pub rows: usize,
    pub targets: usize,
}

impl Scale {
    /// 1,000,000 rows, 100,000 users: 30,000 with 5 sessions, 70,000 with 12 or 13.
    pub const FULL: Scale = Scale {
        users: 100_000,
        rows: 1_000_000,
        targets: 30_000,
    };
    /// 10,000,000 rows, 1,000,000 users: 30,000 with 5 sessions, 970,000 with 10 (about 5 GB
    /// on disk and four minutes of seeding).
    pub const TENFOLD: Scale = Scale {
        users: 1_000_000,
        rows: 10_000_000,
        targets: 30_000,
    };
    /// 100,000 rows, 10,000 users: 9,000 with 5 sessions, 1,000 with 55 (the sustained run may
    /// run out of users to sign out before its time is up).
    pub const TENTH: Scale = Scale {
        users: 10_000,
        rows: 100_000,
        targets: 9_000,
    };

    fn label(&self) -> String {
        let short = |n: usize| match n {
            n if n >= 1_000_000 => format!("{}M", n / 1_000_000),
            n => format!("{}k", n / 1000),
        };
        format!("{} rows, {} users", short(self.rows), short(self.users))
    }
}

/// How the calls are made.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Sequential calls per credential kind.
    pub calls: usize,
    /// Concurrent callers of the sustained run.
    pub callers: usize,
    /// Length of the sustained run.
    pub duration: Duration,
}

const WARM_UP_CALLS: usize = 20;
/// Target users are `t<i>@bench.test`, the others `o<i>@bench.test`.
const TARGET: &str = "t";
const OTHER: &str = "o";

/// Three rows per scale: sequential by API key, sequential by JWT, sustained.
pub async fn run(scales: &[Scale], load: Load) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for scale in scales {
        rows.extend(run_one(*scale, load).await?);
    }
    Ok(rows)
}

async fn run_one(scale: Scale, load: Load) -> anyhow::Result<Vec<Row>> {
    let label = scale.label();
    let needed = WARM_UP_CALLS + 2 * load.calls + load.callers;
    anyhow::ensure!(
        scale.targets >= needed && scale.users > scale.targets,
        "{label}: {needed} users to sign out are needed, {} are seeded",
        scale.targets
    );
    let db = BenchDb::create("ual_big")?;
    let idp = Idp::start().await?;
    let api_key = seed_org(&mut db.connect()?, &idp.issuer)?;
    let seeding = Instant::now();
    progress!("ual-big {label}: seeding (a million rows take about a minute)");
    db.execute(users_sql(TARGET, scale.targets) + &users_sql(OTHER, scale.users - scale.targets))
        .await?;
    db.seed_sessions(sessions_of(scale)).await?;
    db.settle().await?;
    let mut conn = db.connect()?;
    let count: usize =
        query_text(&mut conn, "SELECT count(*)::text AS v FROM sessions")?.parse()?;
    anyhow::ensure!(
        count == scale.rows,
        "seeded {count} sessions, not {}",
        scale.rows
    );
    progress!(
        "ual-big {label}: seeded in {:.0}s; table + indexes: {}",
        seeding.elapsed().as_secs_f64(),
        query_text(
            &mut conn,
            "SELECT pg_size_pretty(pg_total_relation_size('sessions')) AS v"
        )?
    );

    let app = Instance::start(&db, &[]).await?;
    let audience = format!("{}/global-token-revocation", app.base);
    let meter = CpuMeter::new(&[&app], &db);
    let mut targets: Vec<String> = (0..scale.targets).map(|i| email(TARGET, i)).collect();
    targets.shuffle(&mut rand::rng());
    let mut targets = targets.into_iter();

    // Warm-up: connections, prepared statements, the JWKS cache (fetched at the first JWT).
    let mut caller = RawConn::connect(app.addr).await?;
    for (k, user) in targets.by_ref().take(WARM_UP_CALLS).enumerate() {
        let credential = if k % 2 == 0 {
            api_key.clone()
        } else {
            idp.jwt(CLIENT_ID, &audience)
        };
        call(&mut caller, app.addr, &credential, &user).await?;
    }

    let mut rows = Vec::new();
    for by_jwt in [false, true] {
        let kind = if by_jwt {
            "JWT (warm JWKS)"
        } else {
            "org API key"
        };
        progress!("ual-big {label}: {} sequential calls, {kind}", load.calls);
        // Signed beforehand (RSA signing is slow), so the bench does not take CPU from the app.
        let calls: Vec<(String, String)> = targets
            .by_ref()
            .take(load.calls)
            .map(|user| {
                let credential = if by_jwt {
                    idp.jwt(CLIENT_ID, &audience)
                } else {
                    api_key.clone()
                };
                (user, credential)
            })
            .collect();
        // Connected now: an instance closes a connection idle for five seconds.
        let mut caller = RawConn::connect(app.addr).await?;
        let wal_start = wal_lsn(&mut conn)?;
        let waits = WaitSampler::start(&db)?;
        let cpu_start = meter.sample();
        let mut latencies = Vec::with_capacity(load.calls);
        for (user, credential) in &calls {
            latencies.push(call(&mut caller, app.addr, credential, user).await?);
        }
        let cpu = meter.sample().since(&cpu_start);
        let waits = waits.finish()?;
        let wal_end = wal_lsn(&mut conn)?;
        let wal = wal_bytes(&mut conn, &wal_start, &wal_end)?;
        rows.push(
            Row::new("ual-big", format!("{label}: one call at a time, {kind}"))
                .latency(Latency::of(latencies))
                .figure("wal_kib_per_call", wal / load.calls as f64 / 1024.0)
                .figures(cpu.per_op(load.calls))
                .figures(cpu.figures(""))
                .figures(waits.figures(3))
                .at_most("p99_ms", 10.0),
        );
    }

    let remaining: Vec<String> = targets.collect();
    progress!(
        "ual-big {label}: {} concurrent callers for up to {:?} ({} users left to sign out)",
        load.callers,
        load.duration,
        remaining.len()
    );
    let wal_start = wal_lsn(&mut conn)?;
    let waits = WaitSampler::start(&db)?;
    let cpu_start = meter.sample();
    let run = sustained(app.addr, &api_key, remaining, load).await?;
    let cpu = meter.sample().since(&cpu_start);
    let waits = waits.finish()?;
    let wal_end = wal_lsn(&mut conn)?;
    let wal = wal_bytes(&mut conn, &wal_start, &wal_end)?;
    let done = run.latencies.len();
    let rate = done as f64 / run.seconds;
    progress!("ual-big {label}: {rate:.0} revocations/s");
    rows.push(
        Row::new(
            "ual-big",
            format!("{label}: {} concurrent callers", load.callers),
        )
        .latency(Latency::of(run.latencies))
        .figure("revocations_per_s", rate)
        .figure("seconds", run.seconds)
        .figure("wal_kib_per_call", wal / done.max(1) as f64 / 1024.0)
        .figures(cpu.per_op(done))
        .figures(cpu.figures(""))
        .figures(waits.figures(4))
        .at_least("revocations_per_s", 1000.0),
    );
    Ok(rows)
}

/// How many sessions a user has: five for each target; the rest spread evenly over the others,
/// the first of whom have one more when the rows do not divide evenly.
fn sessions_of(scale: Scale) -> impl Fn(&str) -> usize + Send + 'static {
    let others = scale.users - scale.targets;
    let left = scale.rows - 5 * scale.targets;
    let (base, extra) = (left / others, left % others);
    move |email| {
        if email.starts_with(TARGET) {
            return 5;
        }
        let index: usize = email[OTHER.len()..]
            .split('@')
            .next()
            .and_then(|i| i.parse().ok())
            .expect("an email made by `email(OTHER, i)`");
        base + usize::from(index < extra)
    }
}

/// Signs out `user`; returns how long the 204 took.
async fn call(
    conn: &mut RawConn,
    addr: SocketAddr,
    credential: &str,
    user: &str,
) -> anyhow::Result<Duration> {
    let request = ual_request(addr, credential, user);
    let sent = Instant::now();
    let response = conn.send(&request).await?;
    let took = sent.elapsed();
    anyhow::ensure!(
        response.status == 204,
        "UAL for {user} answered {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    Ok(took)
}

struct Run {
    latencies: Vec<Duration>,
    seconds: f64,
}

/// `callers` keep-alive connections signing out the users in turn until the time is up or no
/// user is left.
async fn sustained(
    addr: SocketAddr,
    api_key: &str,
    users: Vec<String>,
    load: Load,
) -> anyhow::Result<Run> {
    let users = Arc::new(users);
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::with_capacity(load.callers);
    for _ in 0..load.callers {
        conns.push(RawConn::connect(addr).await?);
    }
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let (users, next, api_key) = (users.clone(), next.clone(), api_key.to_owned());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let Some(user) = users.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                latencies.push(call(&mut conn, addr, &api_key, user).await?);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done?.context("a caller failed")?);
    }
    Ok(Run {
        latencies,
        seconds: started.elapsed().as_secs_f64(),
    })
}
