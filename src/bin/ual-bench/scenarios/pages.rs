//! Authenticated pages: `GET /todos` of a signed-in user, as fast as 64 keep-alive connections
//! can ask, on one instance with two workers. Requests per second and latency, for lists of
//! different lengths; and whether a page view writes to the session's row.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;

use crate::{
    fixture::{
        BenchDb, CookieForge, CpuMeter, Instance, ORG_ID, RawConn, WaitSampler, email, get_request,
        progress, query_text, seed_org, session_key,
    },
    report::{Latency, Row},
};

const WARM_UP: Duration = Duration::from_secs(1);

/// One row per list length.
pub async fn run(
    todo_counts: &[usize],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Vec<Row>> {
    progress!("pages: seeding users with {todo_counts:?} todos");
    let db = BenchDb::create("pages")?;
    let forge = CookieForge::new();
    seed_org(&mut db.connect()?, "https://idp.bench.test")?;
    let mut sql = String::new();
    for (i, count) in todo_counts.iter().enumerate() {
        let email = email("p", i);
        sql += &format!(
            "INSERT INTO users (org_id, email) VALUES ('{ORG_ID}', '{email}');
             INSERT INTO todos (user_id, title, done, created_at)
               SELECT u.id, 'Benchmark todo number ' || k, k % 3 = 0, now() - (k || ' seconds')::interval
               FROM users u, generate_series(1, {count}) AS k WHERE u.email = '{email}';"
        );
    }
    db.execute(sql).await?;
    db.seed_sessions(|_| 1).await?;
    db.settle().await?;
    let app = Instance::start(&db, &[forge.env(), ("WORKERS", "2")]).await?;
    let meter = CpuMeter::new(&[&app], &db);
    let mut conn = db.connect()?;

    let mut rows = Vec::new();
    for (i, &count) in todo_counts.iter().enumerate() {
        let email = email("p", i);
        let cookie = forge.cookie(&session_key(&email, 1));
        let request = Arc::new(get_request(app.addr, "/todos", Some(&cookie)));

        // The cookie signs in: the page names the user and lists the todos.
        let page = RawConn::connect(app.addr).await?.send(&request).await?;
        let html = String::from_utf8_lossy(&page.body);
        anyhow::ensure!(
            page.status == 200 && html.contains(&email),
            "GET /todos did not show {email}'s page (status {})",
            page.status
        );
        anyhow::ensure!(
            count == 0 || html.contains("Benchmark todo number 1"),
            "the page does not list the todos"
        );

        let row_version = format!(
            "SELECT s.xmin::text AS v FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = '{email}'"
        );
        let xmin_before = query_text(&mut conn, &row_version)?;
        progress!("pages: {count} todos: warming up for {WARM_UP:?}");
        load(app.addr, &request, connections, WARM_UP).await?;
        progress!("pages: {count} todos: {connections} connections for {duration:?}");
        let waits = WaitSampler::start(&db)?;
        let cpu_start = meter.sample();
        let run = load(app.addr, &request, connections, duration).await?;
        let cpu = meter.sample().since(&cpu_start);
        let waits = waits.finish()?;
        let xmin_after = query_text(&mut conn, &row_version)?;
        let requests = run.latencies.len();
        let rps = requests as f64 / run.seconds;
        progress!("pages: {count} todos: {rps:.0} requests/s");
        let row = Row::new(
            "pages",
            format!("GET /todos, {count} todos, {connections} conns"),
        )
        .latency(Latency::of(run.latencies))
        .figure("requests_per_s", rps)
        .figure("not_200", run.not_ok as f64)
        .figure("body_bytes", page.body.len() as f64)
        .figure("session_row_written", f64::from(xmin_before != xmin_after))
        .figures(cpu.per_op(requests))
        .figures(cpu.figures(""))
        .figures(waits.figures(3))
        .at_most("not_200", 0.0);
        // The target is for the 20 todos; other sizes show how cost grows.
        rows.push(if count == 20 {
            row.at_least("requests_per_s", 5000.0)
        } else {
            row
        });
    }
    Ok(rows)
}

pub struct Run {
    pub latencies: Vec<Duration>,
    pub not_ok: usize,
    pub seconds: f64,
}

/// `connections` keep-alive connections, each sending `request` again as soon as the previous
/// response is read, until `duration` is over.
pub async fn load(
    addr: SocketAddr,
    request: &Arc<Vec<u8>>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(RawConn::connect(addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let request = request.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut not_ok = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = conn.send(&request).await?;
                latencies.push(sent.elapsed());
                not_ok += usize::from(response.status != 200);
            }
            anyhow::Ok((latencies, not_ok))
        });
    }
    let mut run = Run {
        latencies: Vec::new(),
        not_ok: 0,
        seconds: 0.0,
    };
    while let Some(done) = tasks.join_next().await {
        let (latencies, not_ok) = done??;
        run.latencies.extend(latencies);
        run.not_ok += not_ok;
    }
    run.seconds = started.elapsed().as_secs_f64();
    Ok(run)
}
