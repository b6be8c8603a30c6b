//! Universal Logout while pages are saturated: one instance with two workers; `GET /todos`
//! (20 todos) as fast as 64 keep-alive connections can ask, and meanwhile single UAL calls, one
//! every few milliseconds from a thread of their own, each signing out a different user. A
//! revocation must keep close to its idle latency (target: p99 ≤ 3× the idle p99 and ≤ 15 ms)
//! while pages keep their throughput (≥ 90% of the figure without revocations).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;

use super::pages::load;
use crate::{
    fixture::{
        BenchDb, CookieForge, Instance, ORG_ID, RawConn, email, get_request, progress, seed_org,
        seed_sessions, session_key, ual_request, users_sql,
    },
    report::{Latency, Row},
};

const PAGE_CONNECTIONS: usize = 64;
const TODOS: usize = 20;
/// Pause between UAL calls under load (they are measured one at a time).
const UAL_EVERY: Duration = Duration::from_millis(20);
/// Time the page load takes to ramp up, and to wind down, around the loaded UAL calls.
const RAMP: Duration = Duration::from_millis(200);

pub async fn run(calls: usize, seconds: u64) -> anyhow::Result<Vec<Row>> {
    let duration = Duration::from_secs(seconds);
    let db = BenchDb::create("ual_under_load")?;
    let forge = CookieForge::new();
    let (api_key, targets) = seed(&db, calls)?;
    let app = Instance::start(&db, &[forge.env(), ("WORKERS", "2")]).await?;
    let page_email = email("page", 0);
    let cookie = forge.cookie(&session_key(&page_email, 1));
    let page = Arc::new(get_request(app.addr, "/todos", Some(&cookie)));
    let answer = RawConn::connect(app.addr).await?.send(&page).await?;
    anyhow::ensure!(
        answer.status == 200,
        "GET /todos answered {}",
        answer.status
    );

    // The calls come from a thread of their own (see `calls_apart`), each phase on a fresh
    // connection: the warm-up, the idle server, then under page load.
    let (warm, rest) = targets.split_at(20);
    let (idle_targets, loaded_targets) = rest.split_at(calls);
    let caller = |targets: &[String], until, pause| {
        calls_apart(app.addr, &api_key, targets.to_vec(), until, pause)
    };

    progress!("ual-under-load: warming up");
    load(app.addr, &page, PAGE_CONNECTIONS, Duration::from_secs(1)).await?;
    caller(warm, Until::Calls(warm.len()), Duration::ZERO).await?;

    progress!("ual-under-load: {calls} UAL calls on an idle server");
    let idle = caller(idle_targets, Until::Calls(calls), UAL_EVERY / 4).await?;

    progress!("ual-under-load: pages alone for {duration:?}");
    let alone = load(app.addr, &page, PAGE_CONNECTIONS, duration).await?;

    progress!("ual-under-load: pages and UAL calls together for {duration:?}");
    let pages = tokio::spawn({
        let page = page.clone();
        async move { load(app.addr, &page, PAGE_CONNECTIONS, duration).await }
    });
    // Begin after the page load has ramped up, stop before it winds down.
    let window = Until::Between(RAMP, duration.saturating_sub(RAMP));
    let loaded = caller(loaded_targets, window, UAL_EVERY).await?;
    let together = pages.await??;

    let idle = Latency::of(idle);
    let loaded = Latency::of(loaded);
    let rps_alone = alone.latencies.len() as f64 / alone.seconds;
    let rps_together = together.latencies.len() as f64 / together.seconds;
    let bound = (idle.p99_ms * 3.0).min(15.0);
    Ok(vec![
        Row::new("ual-under-load", "UAL, idle server").latency(idle),
        Row::new(
            "ual-under-load",
            format!("UAL while {PAGE_CONNECTIONS} conns load GET /todos"),
        )
        .latency(loaded)
        .figure("p99_bound_ms", bound)
        .at_most("p99_ms", bound),
        Row::new(
            "ual-under-load",
            format!("GET /todos, {TODOS} todos, {PAGE_CONNECTIONS} conns"),
        )
        .latency(Latency::of(together.latencies))
        .figure("requests_per_s_alone", rps_alone)
        .figure("requests_per_s", rps_together)
        .figure("share_of_alone", rps_together / rps_alone)
        .figure("not_200", (alone.not_ok + together.not_ok) as f64)
        .at_least("share_of_alone", 0.9)
        .at_most("not_200", 0.0),
    ])
}

/// The org (with an API key), users to sign out (five sessions each) and the page user with
/// `TODOS` todos and one session. Returns the API key and the emails to sign out.
fn seed(db: &BenchDb, calls: usize) -> anyhow::Result<(String, Vec<String>)> {
    // Enough users for the idle calls, the warm-up and one call every `UAL_EVERY` under load.
    let users = calls + 2_000;
    let mut conn = db.connect()?;
    let api_key = seed_org(&mut conn, "https://idp.bench.test")?;
    let page_email = email("page", 0);
    conn.batch_execute(&format!(
        "{}
         INSERT INTO users (org_id, email) VALUES ('{ORG_ID}', '{page_email}');
         INSERT INTO todos (user_id, title, done, created_at)
           SELECT u.id, 'Benchmark todo number ' || k, k % 3 = 0, now() - (k || ' seconds')::interval
           FROM users u, generate_series(1, {TODOS}) AS k WHERE u.email = '{page_email}';",
        users_sql("user", users)
    ))
    .context("seeding users")?;
    seed_sessions(
        &mut conn,
        |email| if email.starts_with("page") { 1 } else { 5 },
    )?;
    Ok((api_key, (0..users).map(|i| email("user", i)).collect()))
}

/// When a run of UAL calls ends.
#[derive(Clone, Copy)]
enum Until {
    /// After this many calls.
    Calls(usize),
    /// Calls begin after the first duration and none begins after the second (from the start).
    Between(Duration, Duration),
}

/// Signs `targets` out one at a time, `pause` apart, from a thread and runtime of its own, as an
/// IdP calls from a machine of its own: what is measured is the server's answer, not a wait
/// behind this process's page-load tasks for the bench's shared workers.
async fn calls_apart(
    addr: SocketAddr,
    api_key: &str,
    targets: Vec<String>,
    until: Until,
    pause: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let api_key = api_key.to_owned();
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ual-caller".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(calls(addr, &api_key, &targets, until, pause)));
            let _ = answer.send(result);
        })?;
    answered.await.context("the UAL caller's thread stopped")?
}

async fn calls(
    addr: SocketAddr,
    api_key: &str,
    targets: &[String],
    until: Until,
    pause: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let started = Instant::now();
    let mut conn = RawConn::connect(addr).await?;
    if let Until::Between(begin, _) = until {
        tokio::time::sleep_until((started + begin).into()).await;
    }
    let mut latencies = Vec::new();
    for target in targets {
        match until {
            Until::Calls(n) if latencies.len() >= n => break,
            Until::Between(_, end) if started.elapsed() >= end => break,
            _ => {}
        }
        let request = ual_request(addr, api_key, target);
        let sent = Instant::now();
        let answer = conn.send(&request).await?;
        anyhow::ensure!(answer.status == 204, "UAL answered {}", answer.status);
        latencies.push(sent.elapsed());
        tokio::time::sleep(pause).await;
    }
    if let Until::Calls(n) = until {
        anyhow::ensure!(latencies.len() == n, "out of users to sign out");
    }
    Ok(latencies)
}
