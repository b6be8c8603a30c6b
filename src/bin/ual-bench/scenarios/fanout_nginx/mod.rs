//! Revocation fan-out through nginx, as deployed: N instances behind nginx with
//! `deploy/nginx/ual-todo.conf`, S live-logout streams (`GET /events`) opened through the proxy
//! (which spreads them over the instances, least connections first) by several load-generator
//! processes ([`holder`]: one process may hold at most 20,000 open files here), then users
//! revoked one after another through Universal Logout, also through the proxy. For each of a
//! revoked user's tabs: the time from sending the request to its `logout` event; for each user,
//! the time until the last of their tabs was told. And each instance's memory per open stream.

pub mod holder;

use std::{net::SocketAddr, process::Stdio, time::Duration};

use anyhow::Context as _;
use rand::seq::SliceRandom as _;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use self::holder::{COOKIE_KEY_ENV, unix_nanos};
use super::fanout::{SESSIONS_PER_USER, warm_up};
use crate::{
    fixture::{
        BenchDb, CookieForge, CpuMeter, Instance, Proxy, RawConn, email, free_port,
        open_files_limit, progress, seed_org, ual_request, users_sql,
    },
    report::{Latency, Row},
};

/// How long a logout may take before it counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(5);
/// How long the holders may take to open their streams.
const OPEN_TIMEOUT: Duration = Duration::from_secs(600);

/// What a holder reports.
enum Report {
    Open(usize),
    Logout { user: usize, at_nanos: u128 },
    Exited(usize),
}

/// A holder process; killed when dropped (its stdin closes first, which ends it too).
struct Holder {
    _child: Child,
}

/// Options of a run.
pub struct Setup {
    pub streams: usize,
    pub instances: usize,
    pub holders: usize,
    pub revoke_users: usize,
}

/// One row: the latencies, memory and CPU of a run.
pub async fn run(setup: Setup) -> anyhow::Result<Row> {
    let Setup {
        streams,
        instances: count,
        holders,
        revoke_users,
    } = setup;
    let users = streams / SESSIONS_PER_USER;
    anyhow::ensure!(
        users >= holders,
        "at least {SESSIONS_PER_USER} streams per holder"
    );
    let limit = open_files_limit()?;
    anyhow::ensure!(
        limit as usize >= streams.div_ceil(count) + 256,
        "each instance needs an open file per stream; the limit is {limit} (raise `ulimit -n`)"
    );
    anyhow::ensure!(
        limit as usize >= users.div_ceil(holders) * SESSIONS_PER_USER + 256,
        "each holder needs an open file per stream; the limit is {limit}: more holders"
    );

    progress!("fanout-nginx {streams}: seeding {users} users with {SESSIONS_PER_USER} sessions");
    let db = BenchDb::create("fanout_nginx")?;
    let forge = CookieForge::new();
    let api_key = seed_org(&mut db.connect()?, "https://idp.bench.test")?;
    db.execute(format!(
        "{}{}",
        users_sql("f", users),
        users_sql("warm", count)
    ))
    .await?;
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;

    let proxy_port = free_port()?;
    let public_url = format!("http://127.0.0.1:{proxy_port}");
    let env = [
        forge.env(),
        ("PUBLIC_URL", public_url.as_str()),
        ("TRUST_PROXY_HEADERS", "true"),
    ];
    let mut instances = Vec::new();
    for _ in 0..count {
        instances.push(Instance::start(&db, &env).await?);
    }
    let addrs: Vec<_> = instances.iter().map(|i| i.addr).collect();
    let proxy = Proxy::start(&addrs, streams, proxy_port, u8::try_from(holders)?).await?;
    warm_up(&addrs, &forge, &api_key).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before: Vec<u64> = instances
        .iter()
        .map(|i| i.rss_kib())
        .collect::<anyhow::Result<_>>()?;
    let proxy_rss_before = proxy.rss_kib()?;
    let kernel_before = kernel_kib()?;

    progress!("fanout-nginx {streams}: {holders} processes open them through nginx");
    let opening = std::time::Instant::now();
    let (held, mut reports, open) = open_streams(&proxy, &forge, users, holders).await?;
    let open_seconds = opening.elapsed().as_secs_f64();
    progress!("fanout-nginx {streams}: {open} streams open in {open_seconds:.1}s");
    anyhow::ensure!(
        open == users * SESSIONS_PER_USER,
        "only {open} streams open"
    );

    // Idle: every stream open, nothing happening but keep-alive comments.
    let meter = CpuMeter::new(&instances.iter().collect::<Vec<_>>(), &db);
    let idle_start = meter.sample();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = meter.sample().since(&idle_start);
    let mut per_instance = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let on = instance.metric("ual_todo_sse_streams").await?;
        let grown = instance.rss_kib()?.saturating_sub(rss_before[i]);
        per_instance.push((on, grown as f64, grown as f64 / on.max(1.0)));
    }
    let proxy_grown = proxy.rss_kib()?.saturating_sub(proxy_rss_before) as f64;
    let kernel_grown = kernel_kib()?.saturating_sub(kernel_before) as f64;
    let worst = per_instance.iter().map(|p| p.2).fold(0.0, f64::max);
    let overall = per_instance.iter().map(|p| p.1).sum::<f64>() / open as f64;
    for (i, (on, grown, kib)) in per_instance.iter().enumerate() {
        progress!(
            "fanout-nginx {streams}: instance {i}: {on} streams, RSS +{:.1} MiB: {kib:.1} KiB each",
            grown / 1024.0
        );
    }

    let mut targets: Vec<usize> = (0..users).collect();
    targets.shuffle(&mut rand::rng());
    targets.truncate(revoke_users.min(users));
    progress!(
        "fanout-nginx {streams}: revoking {} users one after another",
        targets.len()
    );
    let cpu_start = meter.sample();
    let proxy_cpu_start = proxy.cpu_ns()?;
    let told = revoke_each(&mut reports, proxy.addrs[0], &api_key, &targets).await?;
    let cpu = meter.sample().since(&cpu_start);
    let proxy_ms = (proxy.cpu_ns()? - proxy_cpu_start) as f64 / 1e6;
    drop(held);

    let (answered, last_tab) = (Latency::of(told.answered), Latency::of(told.last_tab));
    let mut row = Row::new(
        "fanout-nginx",
        format!("{open} streams through nginx, {count} instances, {holders} client processes"),
    )
    .latency(Latency::of(told.tabs))
    .figure("users_revoked", targets.len() as f64)
    .figure("lost", told.lost as f64)
    .figure("all_tabs_told_p50_ms", last_tab.p50_ms)
    .figure("all_tabs_told_p99_ms", last_tab.p99_ms)
    .figure("ual_204_p50_ms", answered.p50_ms)
    .figure("ual_204_p99_ms", answered.p99_ms)
    .figure(
        "logout_before_204_pct",
        told.before_204 as f64 * 100.0 / (targets.len() * SESSIONS_PER_USER) as f64,
    )
    .figure("kib_per_stream", overall)
    .figure("kib_per_stream_worst_instance", worst)
    .figure("nginx_kib_per_stream", proxy_grown / open as f64)
    .figure("kernel_kib_per_stream", kernel_grown / open as f64)
    .figure("open_s", open_seconds)
    .figure("idle_cpu_app%", idle.app);
    for (i, (on, _, kib)) in per_instance.iter().enumerate() {
        row = row
            .figure(&format!("instance{i}_streams"), *on)
            .figure(&format!("instance{i}_kib_per_stream"), *kib);
    }
    Ok(row
        .figures(cpu.per_op(targets.len()))
        .figure("nginx_cpu_ms/op", proxy_ms / targets.len() as f64)
        .figure("cpu_nginx%", proxy_ms / 10.0 / cpu.seconds)
        .figures(cpu.figures(""))
        .at_most("p99_ms", 10.0)
        .at_most("kib_per_stream_worst_instance", 12.0)
        .at_most("lost", 0.0))
}

/// Starts the holders, each for its share of the users and through its own address of the
/// proxy, and waits until every one has opened its streams: the holders (alive as long as this
/// is kept), their reports to come, and how many streams are open.
async fn open_streams(
    proxy: &Proxy,
    forge: &CookieForge,
    users: usize,
    holders: usize,
) -> anyhow::Result<(Vec<Holder>, mpsc::UnboundedReceiver<Report>, usize)> {
    let (tx, mut reports) = mpsc::unbounded_channel();
    let mut held = Vec::new();
    for k in 0..holders {
        let (from, to) = (users * k / holders, users * (k + 1) / holders);
        held.push(spawn_holder(
            k,
            proxy.addrs[k],
            from,
            to,
            forge,
            tx.clone(),
        )?);
    }
    drop(tx);
    let mut open = 0;
    for _ in 0..holders {
        match tokio::time::timeout(OPEN_TIMEOUT, reports.recv()).await {
            Ok(Some(Report::Open(n))) => open += n,
            Ok(Some(Report::Exited(k))) => anyhow::bail!("holder {k} failed (see above)"),
            _ => anyhow::bail!("the holders did not open their streams in time"),
        }
    }
    Ok((held, reports, open))
}

/// What the revocations' tabs heard, and when.
struct Told {
    /// Each tab: from sending the request to its `logout` event.
    tabs: Vec<Duration>,
    /// Each user: until the last of their tabs was told.
    last_tab: Vec<Duration>,
    /// Each request: until its `204` arrived.
    answered: Vec<Duration>,
    lost: usize,
    /// Tabs told before their request's `204` arrived.
    before_204: usize,
}

/// Signs the `targets` users out one after another through the proxy, each time waiting for
/// the `logout` of each of their tabs.
async fn revoke_each(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    proxy: SocketAddr,
    api_key: &str,
    targets: &[usize],
) -> anyhow::Result<Told> {
    let mut ual = RawConn::connect(proxy).await?;
    let mut told = Told {
        tabs: vec![],
        last_tab: vec![],
        answered: vec![],
        lost: 0,
        before_204: 0,
    };
    for &user in targets {
        let request = ual_request(proxy, api_key, &email("f", user));
        let sent = unix_nanos();
        let answer = ual.send(&request).await?;
        let answered_at = unix_nanos();
        anyhow::ensure!(answer.status == 204, "UAL answered {}", answer.status);
        told.answered.push(nanos(answered_at - sent));
        let (mut heard, mut slowest) = (0, Duration::ZERO);
        let deadline = tokio::time::Instant::now() + LOST_AFTER;
        while heard < SESSIONS_PER_USER {
            match tokio::time::timeout_at(deadline, reports.recv()).await {
                Ok(Some(Report::Logout { user: u, at_nanos })) if u == user => {
                    heard += 1;
                    told.before_204 += usize::from(at_nanos < answered_at);
                    let took = nanos(at_nanos.saturating_sub(sent));
                    slowest = slowest.max(took);
                    told.tabs.push(took);
                }
                Ok(Some(Report::Logout { user: u, .. })) => {
                    anyhow::bail!("user {u}, not revoked, was signed out")
                }
                Ok(Some(Report::Exited(k))) => anyhow::bail!("holder {k} exited"),
                _ => break,
            }
        }
        told.lost += SESSIONS_PER_USER - heard;
        if heard == SESSIONS_PER_USER {
            told.last_tab.push(slowest);
        }
    }
    Ok(told)
}

/// The kernel's memory for sockets and the like: its slab caches plus TCP buffers, in KiB. A
/// stream through the proxy has four sockets here (client, proxy's two, instance); the
/// machine's other work moves this too, so it is a rough figure.
fn kernel_kib() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let slab: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no Slab in /proc/meminfo")?;
    let sockstat = std::fs::read_to_string("/proc/net/sockstat")?;
    let tcp_pages: u64 = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "mem").nth(1))
        .and_then(|v| v.parse().ok())
        .context("no TCP mem in /proc/net/sockstat")?;
    Ok(slab + tcp_pages * 4)
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Starts `ual-bench hold-streams` for users `from..to`; its reports go to `reports`.
fn spawn_holder(
    k: usize,
    proxy: SocketAddr,
    from: usize,
    to: usize,
    forge: &CookieForge,
    reports: mpsc::UnboundedSender<Report>,
) -> anyhow::Result<Holder> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("hold-streams")
        .args(["--proxy", &proxy.to_string()])
        .args([
            "--prefix",
            "f",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .env(COOKIE_KEY_ENV, forge.hex())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start a holder")?;
    let stdout = child.stdout.take().context("no stdout")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut words = line.split_whitespace();
            let report = match (words.next(), words.next(), words.next()) {
                (Some("open"), Some(n), None) => n.parse().ok().map(Report::Open),
                (Some("logout"), Some(user), Some(at)) => user
                    .parse()
                    .ok()
                    .zip(at.parse().ok())
                    .map(|(user, at_nanos)| Report::Logout { user, at_nanos }),
                _ => None,
            };
            match report {
                Some(report) => {
                    if reports.send(report).is_err() {
                        return;
                    }
                }
                None => eprintln!("holder {k}: {line}"),
            }
        }
        let _ = reports.send(Report::Exited(k));
    });
    Ok(Holder { _child: child })
}
