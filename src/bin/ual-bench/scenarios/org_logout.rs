//! "Sign out everyone in the org" at size: an org of 10,000 users with five sessions each
//! (50,000), some of them with live-logout streams open over two instances, signed out from the
//! dashboard (`POST /admin/org-logout`, the admin's own session spared) while an IdP keeps
//! sending Universal Logout requests for users of ANOTHER org, one every 10 ms, alternating
//! instances. Reports the run's total time (the `org_logouts` row: first batch to last), when
//! the last open tab heard its `logout`, and the UAL latency before and during the run.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;
use tokio::task::JoinSet;

use super::fanout::{LOGOUT, SESSIONS_PER_USER, fill_pools, open_streams};
use crate::{
    fixture::{
        BenchDb, CookieForge, Instance, RawConn, email, get_request, progress, query_text,
        seed_org, session_key, ual_request, users_sql,
    },
    report::{Latency, Row},
};

/// The other org, whose users the concurrent Universal Logout requests sign out.
const OTHER_ORG_ID: &str = "00000000-0000-0000-0000-000000000002";
/// Users of the other org (each signed out at most once).
const OTHER_USERS: usize = 5_000;
/// Streams being opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// The pace of the concurrent Universal Logout requests.
const UAL_EVERY: Duration = Duration::from_millis(10);
/// How long the baseline (no run going) samples Universal Logout.
const BASELINE: Duration = Duration::from_secs(3);
/// The longest a run may take before the bench gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

pub async fn run(users: usize, stream_users: usize) -> anyhow::Result<Vec<Row>> {
    let sessions = users * SESSIONS_PER_USER;
    progress!("org-logout: seeding {users} users with {sessions} sessions, and another org");
    let db = BenchDb::create("org_logout")?;
    let forge = CookieForge::new();
    let other_key = {
        let mut conn = db.connect()?;
        seed_org(&mut conn, "https://idp.bench.test")?;
        conn.batch_execute(&users_sql("o", users))?;
        conn.batch_execute(&format!(
            "UPDATE users SET is_admin = true WHERE email = '{}';",
            email("o", 0)
        ))?;
        seed_other_org(&mut conn)?
    };
    // `fill_pools` signs in as `warm0`: a user of the other org, signed out at warm-up.
    db.execute(format!(
        "INSERT INTO users (org_id, email) VALUES ('{OTHER_ORG_ID}', '{}');",
        email("warm", 0)
    ))
    .await?;
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    db.settle().await?;
    let env = [forge.env()];
    let instances = [
        Instance::start(&db, &env).await?,
        Instance::start(&db, &env).await?,
    ];
    let addrs = [instances[0].addr, instances[1].addr];
    warm_up(&addrs, &forge, &other_key).await?;

    progress!(
        "org-logout: opening {} streams",
        stream_users * SESSIONS_PER_USER
    );
    // Users 1.. (user 0 is the admin, whose first session runs the dashboard).
    let stream_of: Vec<usize> = (1..=stream_users.min(users - 1)).collect();
    let held = open_streams(&addrs, &forge, "o", &stream_of, OPEN_CONCURRENCY).await?;
    let streams = held.len();
    let mut told = JoinSet::new();
    for mut h in held {
        told.spawn(async move { h.conn.wait_for(LOGOUT).await.map(|()| Instant::now()) });
    }

    progress!("org-logout: Universal Logout for the other org, no run going ({BASELINE:?})");
    let mut next_user = 0;
    let baseline = ual_for(&addrs, &other_key, &mut next_user, stop_after(BASELINE)).await?;

    progress!("org-logout: signing out everyone in the org, UAL for the other org meanwhile");
    let admin_cookie = forge.cookie(&session_key(&email("o", 0), 1));
    let stop = Arc::new(AtomicBool::new(false));
    let ual = {
        let (stop, key) = (stop.clone(), other_key.clone());
        tokio::spawn(async move { ual_for(&addrs, &key, &mut next_user, stop).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = RawConn::connect(addrs[0])
        .await?
        .send(&confirm_request(addrs[0], &admin_cookie))
        .await?;
    anyhow::ensure!(
        answer.status == 303,
        "POST /admin/org-logout answered {}",
        answer.status
    );
    let finished = wait_until_finished(addrs[0], &admin_cookie).await?;
    let mut last_told = started;
    let mut lost = 0usize;
    let tabs_until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(tabs_until, told.join_next()).await {
            Ok(Some(done)) => match done? {
                Ok(at) => last_told = last_told.max(at),
                Err(_) => lost += 1,
            },
            Ok(None) => break,
            Err(_) => {
                lost += told.len();
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let during = ual.await??;

    let mut conn = db.connect()?;
    let run_seconds: f64 = query_text(
        &mut conn,
        "SELECT extract(epoch FROM finished_at - started_at)::text AS v FROM org_logouts",
    )?
    .parse()?;
    let left: i64 = query_text(
        &mut conn,
        "SELECT count(*)::text AS v FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.email LIKE 'o%@bench.test'",
    )?
    .parse()?;
    let audited: i64 = query_text(
        &mut conn,
        "SELECT count(*)::text AS v FROM revocations WHERE source = 'admin'",
    )?
    .parse()?;
    anyhow::ensure!(
        left == 1,
        "{left} sessions of the org are left (1 expected: the admin's)"
    );
    anyhow::ensure!(
        audited == users as i64,
        "{audited} audit rows for {users} users"
    );
    drop(instances);

    let baseline = Latency::of(baseline);
    let during = Latency::of(during);
    Ok(vec![
        Row::new(
            "org-logout",
            format!(
                "{users} users, {sessions} sessions, {streams} open streams, 2 instances; \
                 UAL of another org every 10 ms"
            ),
        )
        .latency(during.clone())
        .figure("total_s", run_seconds)
        .figure(
            "until_done_s",
            finished.duration_since(started).as_secs_f64(),
        )
        .figure(
            "last_tab_told_s",
            last_told.duration_since(started).as_secs_f64(),
        )
        .figure("streams_lost", lost as f64)
        .figure("ual_calls_during", during.samples as f64)
        .figure("ual_before_p50_ms", baseline.p50_ms)
        .figure("ual_before_p99_ms", baseline.p99_ms)
        .at_most("total_s", 10.0)
        .at_most("p99_ms", 20.0)
        .at_most("streams_lost", 0.0),
    ])
}

/// The other org, its Universal Logout key, and its users; returns the key.
fn seed_other_org(conn: &mut diesel::PgConnection) -> anyhow::Result<String> {
    let issued = ual_todo::secret_token::issue(ual_todo::secret_token::Kind::OrgApiKey);
    conn.batch_execute(&format!(
        "INSERT INTO orgs (id, name, slug) VALUES ('{OTHER_ORG_ID}', 'Other', 'other');
         INSERT INTO org_api_keys (org_id, prefix, key_hash)
           VALUES ('{OTHER_ORG_ID}', '{prefix}', '\\x{hash}');
         INSERT INTO users (org_id, email)
           SELECT '{OTHER_ORG_ID}', 'x' || i || '@bench.test'
           FROM generate_series(0, {last}) AS i;",
        prefix = issued.prefix,
        hash = hex::encode(issued.hash),
        last = OTHER_USERS - 1,
    ))
    .context("seeding the other org")?;
    Ok(ual_todo::secret_token::reveal(&issued).to_owned())
}

/// Pools filled, and every pooled connection of both instances has run a revocation (as the
/// other scenarios warm up), with users of the other org kept for the measurement.
async fn warm_up(addrs: &[SocketAddr; 2], forge: &CookieForge, key: &str) -> anyhow::Result<()> {
    fill_pools(addrs, forge).await?;
    for addr in addrs {
        let mut conn = RawConn::connect(*addr).await?;
        for _ in 0..32 {
            let answer = conn
                .send(&ual_request(*addr, key, &email("warm", 0)))
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

fn stop_after(after: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

/// Universal Logout for the other org's users, one every [`UAL_EVERY`], alternating instances,
/// until `stop`; each call's time to its 204.
async fn ual_for(
    addrs: &[SocketAddr; 2],
    key: &str,
    next_user: &mut usize,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut conns = [
        RawConn::connect(addrs[0]).await?,
        RawConn::connect(addrs[1]).await?,
    ];
    let mut tick = tokio::time::interval(UAL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut took = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let user = *next_user % OTHER_USERS;
        *next_user += 1;
        let via = user % 2;
        let request = ual_request(addrs[via], key, &format!("x{user}@bench.test"));
        let sent = Instant::now();
        let answer = conns[via].send(&request).await?;
        took.push(sent.elapsed());
        anyhow::ensure!(answer.status == 204, "UAL answered {}", answer.status);
    }
    Ok(took)
}

/// The dashboard's confirmation form, typed right (`bench`), with the admin's session.
fn confirm_request(addr: SocketAddr, cookie: &str) -> Vec<u8> {
    let body = "slug=bench";
    format!(
        "POST /admin/org-logout HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Polls the run's progress (as the dashboard does, but every 20 ms) until it is done; when.
async fn wait_until_finished(addr: SocketAddr, cookie: &str) -> anyhow::Result<Instant> {
    let mut conn = RawConn::connect(addr).await?;
    let until = Instant::now() + GIVE_UP_AFTER;
    while Instant::now() < until {
        let answer = conn
            .send(&get_request(addr, "/admin/org-logout", Some(cookie)))
            .await?;
        anyhow::ensure!(
            answer.status == 200,
            "GET /admin/org-logout answered {}",
            answer.status
        );
        let run: serde_json::Value = serde_json::from_slice(&answer.body)?;
        if run["running"] == false {
            anyhow::ensure!(run["failed"] == false, "the run failed: {run}");
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the run did not finish within {GIVE_UP_AFTER:?}")
}
