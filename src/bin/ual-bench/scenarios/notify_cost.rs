//! What one revocation costs as the number of listening instances grows. PostgreSQL delivers
//! every NOTIFY to every listening connection, one per instance, so each instance hears every
//! revocation, whether or not it holds a stream of that user.
//!
//! K instances (1, 3, 10) each `LISTEN`; a fixed number of streams is spread over them (a user's
//! five tabs on different instances); then users are revoked one after another through
//! Universal Logout, every request sent to instance 0, most of them users with no open tab (as
//! in a big deployment, where a revocation concerns a few of many instances). Measured: the 204
//! and the `logout` events' latency, and CPU per revocation from the scheduler's own accounting:
//! PostgreSQL's backends (the one that commits, and the listening ones that relay the
//! notification), instance 0 (serves the request, and listens) and each other instance (only
//! listens).

use std::{collections::HashMap, time::Duration};

use rand::seq::SliceRandom as _;
use tokio::{sync::oneshot, task::JoinSet};

use super::fanout::{self, LOGOUT, SESSIONS_PER_USER, open_streams, warm_up};
use crate::{
    fixture::{
        BenchDb, CookieForge, Instance, RawConn, cpu_ns, email, progress, query_text, seed_org,
        ual_request, users_sql,
    },
    report::{Latency, Row},
};

/// Streams being opened at once.
const OPEN_CONCURRENCY: usize = 128;
/// Ten instances with the default pools (16 + 4 + the listener each) would need 210 of the
/// database's 100 connections; the requests here come one at a time, so small pools suffice.
const POOLS: [(&str, &str); 2] = [("DATABASE_POOL_SIZE", "4"), ("REVOCATION_POOL_SIZE", "2")];

/// One row per instance count.
pub async fn run(
    instance_counts: &[usize],
    streams: usize,
    revocations: usize,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &count in instance_counts {
        rows.push(run_one(count, streams, revocations).await?);
    }
    Ok(rows)
}

async fn run_one(count: usize, streams: usize, revocations: usize) -> anyhow::Result<Row> {
    let stream_users = streams / SESSIONS_PER_USER;
    let users = revocations.max(stream_users);
    anyhow::ensure!(
        count > 0 && revocations > 0,
        "at least one instance and revocation"
    );

    progress!("notify-cost {count}: seeding {users} users with {SESSIONS_PER_USER} sessions");
    let db = BenchDb::create("notify_cost")?;
    let forge = CookieForge::new();
    let api_key = seed_org(&mut db.connect()?, "https://idp.bench.test")?;
    db.execute(format!(
        "{}{}",
        users_sql("n", users),
        users_sql("warm", count)
    ))
    .await?;
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    let env = [forge.env(), POOLS[0], POOLS[1]];
    let mut instances = Vec::new();
    for _ in 0..count {
        instances.push(Instance::start(&db, &env).await?);
    }
    let addrs: Vec<_> = instances.iter().map(|i| i.addr).collect();
    warm_up(&addrs, &forge, &api_key).await?;

    progress!("notify-cost {count}: opening {streams} streams over {count} instances");
    let with_streams: Vec<usize> = (0..stream_users).collect();
    let held = open_streams(&addrs, &forge, "n", &with_streams, OPEN_CONCURRENCY).await?;
    let mut arrivals: HashMap<usize, Vec<oneshot::Receiver<std::time::Instant>>> = HashMap::new();
    let mut readers = JoinSet::new();
    for mut h in held {
        let (tx, rx) = oneshot::channel();
        arrivals.entry(h.user).or_default().push(rx);
        readers.spawn(async move {
            if h.conn.wait_for(LOGOUT).await.is_ok() {
                let _ = tx.send(std::time::Instant::now());
            }
        });
    }

    let mut conn = db.connect()?;
    let listeners = backends(&mut conn, true)?;
    anyhow::ensure!(listeners.len() == count, "{} listeners", listeners.len());
    let idle_start = Usage::sample(&instances, &mut conn)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = Usage::sample(&instances, &mut conn)?.since(&idle_start, &listeners);

    let mut targets: Vec<usize> = (0..revocations).collect();
    targets.shuffle(&mut rand::rng());
    progress!("notify-cost {count}: {revocations} revocations, each sent to instance 0");
    let mut ual = RawConn::connect(addrs[0]).await?;
    let start = Usage::sample(&instances, &mut conn)?;
    let began = std::time::Instant::now();
    let (mut answered, mut told, mut lost) = (vec![], vec![], 0usize);
    for &user in &targets {
        let sent = std::time::Instant::now();
        let answer = ual
            .send(&ual_request(addrs[0], &api_key, &email("n", user)))
            .await?;
        answered.push(sent.elapsed());
        anyhow::ensure!(answer.status == 204, "UAL answered {}", answer.status);
        lost += fanout::logouts(sent, arrivals.remove(&user).unwrap_or_default(), &mut told).await;
    }
    let seconds = began.elapsed().as_secs_f64();
    let used = Usage::sample(&instances, &mut conn)?.since(&start, &listeners);
    drop(readers);

    let per = |ns: u64| ns as f64 / 1e6 / revocations as f64;
    let answered = Latency::of(answered);
    let mut row = Row::new(
        "notify-cost",
        format!("{count} listening instances, {streams} streams, {revocations} revocations"),
    )
    .latency(Latency::of(told))
    .figure("lost", lost as f64)
    .figure("ual_204_p50_ms", answered.p50_ms)
    .figure("ual_204_p99_ms", answered.p99_ms)
    .figure("revocations_per_s", revocations as f64 / seconds)
    .figure(
        "pg_ms_per_revocation",
        per(used.pg_listeners + used.pg_others),
    )
    .figure("pg_committing_ms_per_revocation", per(used.pg_others))
    .figure("pg_listeners_ms_per_revocation", per(used.pg_listeners))
    .figure(
        "pg_ms_per_notify_per_listener",
        per(used.pg_listeners) / count as f64,
    )
    .figure("app_serving_ms_per_revocation", per(used.app[0]))
    .figure("app_ms_per_revocation_all", per(used.app.iter().sum()))
    .figure(
        "idle_app_cpu%_per_instance",
        idle.app.iter().sum::<u64>() as f64 / 1e7 / idle.seconds / count as f64,
    );
    if count > 1 {
        // What an instance that only listens spends on each revocation it hears.
        let others: u64 = used.app[1..].iter().sum();
        row = row.figure(
            "app_ms_per_notify_per_other_instance",
            per(others) / (count - 1) as f64,
        );
    }
    Ok(row)
}

/// PostgreSQL backends of this database but the asking one: the listening ones, or the others.
fn backends(conn: &mut diesel::PgConnection, listening: bool) -> anyhow::Result<Vec<u32>> {
    let op = if listening { "=" } else { "<>" };
    let text = query_text(
        conn,
        &format!(
            "SELECT coalesce(string_agg(pid::text, ','), '') AS v FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND application_name {op} '{}'",
            ual_todo::live::LISTENER_NAME
        ),
    )?;
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| Ok(p.parse()?))
        .collect()
}

/// CPU nanoseconds used so far: by each instance, and by each backend of the database.
struct Usage {
    at: std::time::Instant,
    app: Vec<u64>,
    pg: HashMap<u32, u64>,
}

/// CPU nanoseconds used between two [`Usage`] samples.
struct Used {
    seconds: f64,
    app: Vec<u64>,
    pg_listeners: u64,
    pg_others: u64,
}

impl Usage {
    fn sample(instances: &[Instance], conn: &mut diesel::PgConnection) -> anyhow::Result<Usage> {
        let mut pids = backends(conn, true)?;
        pids.extend(backends(conn, false)?);
        Ok(Usage {
            at: std::time::Instant::now(),
            app: instances.iter().map(|i| cpu_ns(i.pid)).collect(),
            pg: pids.into_iter().map(|p| (p, cpu_ns(p))).collect(),
        })
    }

    /// What was used since `earlier`; a backend that appeared meanwhile counts from zero.
    fn since(&self, earlier: &Usage, listeners: &[u32]) -> Used {
        let (mut pg_listeners, mut pg_others) = (0, 0);
        for (pid, ns) in &self.pg {
            let grown = ns.saturating_sub(earlier.pg.get(pid).copied().unwrap_or(0));
            if listeners.contains(pid) {
                pg_listeners += grown;
            } else {
                pg_others += grown;
            }
        }
        Used {
            seconds: (self.at - earlier.at).as_secs_f64(),
            app: self
                .app
                .iter()
                .zip(&earlier.app)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            pg_listeners,
            pg_others,
        }
    }
}
