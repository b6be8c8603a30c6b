//! What every scenario needs: a fresh database and SQL seeding, app processes and what they use
//! (memory, CPU), forged session cookies, a lean HTTP/1.1 client and a signing IdP.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use actix_web::{
    App, HttpResponse, HttpServer,
    cookie::{Cookie, CookieJar, Key},
    web,
};
use anyhow::Context as _;
use diesel::{
    Connection as _, PgConnection, QueryableByName, RunQueryDsl as _,
    connection::SimpleConnection as _, sql_types::Text,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk, jwk::JwkSet};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    process::{Child, Command},
};
use ual_todo::{
    config::{DEFAULT_DATABASE_URL, DatabaseUrl},
    db,
};

/// Prints a progress line to stderr, prefixed with the seconds since the bench started.
macro_rules! progress {
    ($($arg:tt)*) => {
        eprintln!("[{:>7.2}s] {}", $crate::fixture::since_start(), format_args!($($arg)*))
    };
}
pub(crate) use progress;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Seconds since the first progress line (or since this was first called).
pub fn since_start() -> f64 {
    STARTED.get_or_init(Instant::now).elapsed().as_secs_f64()
}

// ------------------------------------------------------------------------------------------------
// Database
// ------------------------------------------------------------------------------------------------

/// A database of the benchmark's own, dropped at the end (also on error: `Drop`).
pub struct BenchDb {
    pub url: DatabaseUrl,
    pub name: String,
}

impl BenchDb {
    /// Creates and migrates `ual_bench_<scenario>_<random>`.
    pub fn create(scenario: &str) -> anyhow::Result<Self> {
        let server: DatabaseUrl = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let name = format!(
            "ual_bench_{scenario}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let url = server.with_database(&name);
        db::prepare(&url)?;
        let bench = Self { url, name };
        // Diagnosis: BENCH_EXPLAIN_MS=N logs every statement of this database slower than N ms,
        // with its plan and timings (auto_explain), to the PostgreSQL server log.
        if let Ok(ms) = std::env::var("BENCH_EXPLAIN_MS") {
            let ms: u32 = ms.parse().context("BENCH_EXPLAIN_MS must be a number")?;
            let name = db::quote_ident(&bench.name);
            bench.connect()?.batch_execute(&format!(
                "ALTER DATABASE {name} SET log_min_duration_statement = {ms};
                 ALTER DATABASE {name} SET session_preload_libraries = 'auto_explain';
                 ALTER DATABASE {name} SET auto_explain.log_min_duration = {ms};
                 ALTER DATABASE {name} SET auto_explain.log_analyze = on;
                 ALTER DATABASE {name} SET auto_explain.log_buffers = on;
                 ALTER DATABASE {name} SET auto_explain.log_nested_statements = on;"
            ))?;
        }
        Ok(bench)
    }

    /// A blocking connection for seeding and inspection.
    pub fn connect(&self) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::establish(self.url.expose())?)
    }

    /// Runs SQL on a blocking thread (bulk seeding takes seconds; the runtime keeps serving).
    pub async fn execute(&self, sql: String) -> anyhow::Result<()> {
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || {
            PgConnection::establish(url.expose())?.batch_execute(&sql)?;
            anyhow::Ok(())
        })
        .await?
    }
}

impl BenchDb {
    /// After bulk seeding: statistics and visibility as autovacuum would have them in production
    /// (it is off on the bench machine), and a checkpoint, so the WAL of seeding does not trigger
    /// one in the middle of a measurement. (Each its own statement: VACUUM refuses to run in the
    /// implicit transaction of a multi-statement string.)
    pub async fn settle(&self) -> anyhow::Result<()> {
        self.execute("VACUUM (ANALYZE)".into()).await?;
        self.execute("CHECKPOINT".into()).await
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let admin = self.url.with_database("postgres");
        if let Ok(mut conn) = PgConnection::establish(admin.expose()) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                db::quote_ident(&self.name)
            ));
        }
    }
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Text)]
    v: String,
}

/// The one text value of `sql` (which must name its column `v`).
pub fn query_text(conn: &mut PgConnection, sql: &str) -> anyhow::Result<String> {
    Ok(diesel::sql_query(sql)
        .get_result::<TextValue>(conn)
        .with_context(|| format!("query failed: {sql}"))?
        .v)
}

/// The current WAL position, to measure the WAL a phase wrote (the whole cluster's).
pub fn wal_lsn(conn: &mut PgConnection) -> anyhow::Result<String> {
    query_text(conn, "SELECT pg_current_wal_lsn()::text AS v")
}

/// Bytes of WAL between two positions from [`wal_lsn`].
pub fn wal_bytes(conn: &mut PgConnection, from: &str, to: &str) -> anyhow::Result<f64> {
    Ok(query_text(
        conn,
        &format!("SELECT pg_wal_lsn_diff('{to}', '{from}')::text AS v"),
    )?
    .parse()?)
}

/// Samples what the bench database's busy backends are doing (`pg_stat_activity`), every few
/// milliseconds on a thread and connection of its own, until [`WaitSampler::finish`]: on CPU,
/// waiting for a lock, for the WAL to be flushed, or idle in a transaction the app holds open.
pub struct WaitSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Waits>>,
}

/// What [`WaitSampler`] saw: for each state, the number of backends in it, summed over samples.
#[derive(Debug, Default)]
pub struct Waits {
    pub samples: u64,
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// Every this often: each sample costs PostgreSQL a fraction of a millisecond of CPU, taken
/// from the app under test when the machine is saturated.
const WAIT_SAMPLE_EVERY: Duration = Duration::from_millis(25);

impl WaitSampler {
    pub fn start(db: &BenchDb) -> anyhow::Result<WaitSampler> {
        // Connected to another database, so its own CPU is not counted as the bench database's.
        let mut conn = PgConnection::establish(db.url.with_database("postgres").expose())?;
        let sql = format!(
            "SELECT CASE WHEN state = 'active' \
               THEN coalesce(wait_event_type || ':' || wait_event, 'CPU') ELSE state END AS v \
             FROM pg_stat_activity \
             WHERE datname = '{}' AND state IN ('active', 'idle in transaction')",
            db.name
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut waits = Waits::default();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let rows: Vec<TextValue> = diesel::sql_query(&sql).load(&mut conn)?;
                waits.samples += 1;
                for row in rows {
                    *waits.counts.entry(row.v).or_default() += 1;
                }
                std::thread::sleep(WAIT_SAMPLE_EVERY);
            }
            Ok(waits)
        });
        Ok(WaitSampler { stop, thread })
    }

    pub fn finish(self) -> anyhow::Result<Waits> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the wait sampler panicked"))?
    }
}

impl Waits {
    /// The average number of busy backends, and of backends in each of the `top` commonest
    /// states (`pg:<state>`).
    pub fn figures(&self, top: usize) -> Vec<(String, f64)> {
        let n = self.samples.max(1) as f64;
        let mut states: Vec<(&String, &u64)> = self.counts.iter().collect();
        states.sort_by(|a, b| b.1.cmp(a.1));
        let busy: u64 = self.counts.values().sum();
        let mut figures = vec![("pg_busy_backends".to_owned(), busy as f64 / n)];
        figures.extend(
            states.into_iter().take(top).map(|(state, count)| {
                (format!("pg:{}", state.replace(' ', "_")), *count as f64 / n)
            }),
        );
        figures
    }
}

// ------------------------------------------------------------------------------------------------
// Seeding
// ------------------------------------------------------------------------------------------------

/// The one org of every scenario.
pub const ORG_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The client id the org's IdP signs Universal Logout JWTs for.
pub const CLIENT_ID: &str = "bench-client";

/// Creates the org (trusting `issuer` for JWTs) and an API key; returns the key.
pub fn seed_org(conn: &mut PgConnection, issuer: &str) -> anyhow::Result<String> {
    let issued = ual_todo::secret_token::issue(ual_todo::secret_token::Kind::OrgApiKey);
    conn.batch_execute(&format!(
        "INSERT INTO orgs (id, name, slug, idp_issuer, idp_client_id)
           VALUES ('{ORG_ID}', 'Bench', 'bench', '{issuer}', '{CLIENT_ID}');
         INSERT INTO org_api_keys (org_id, prefix, key_hash)
           VALUES ('{ORG_ID}', '{prefix}', '\\x{hash}');",
        prefix = issued.prefix,
        hash = hex::encode(issued.hash),
    ))
    .context("seeding the org")?;
    Ok(ual_todo::secret_token::reveal(&issued).to_owned())
}

/// The email of user `i` of a group (`prefix`), as [`users_sql`] creates it.
pub fn email(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}@bench.test")
}

/// SQL creating users `<prefix><i>@bench.test` for `i` in `0..count`.
pub fn users_sql(prefix: &str, count: usize) -> String {
    format!(
        "INSERT INTO users (org_id, email)
           SELECT '{ORG_ID}', '{prefix}' || i || '@bench.test' FROM generate_series(0, {last}) AS i;",
        last = count as i64 - 1,
    )
}

/// The session key (what the cookie carries) of a user's `n`th seeded session, as
/// [`sessions_sql`] derives it: the hex SHA-256 of `bench:<email>:<n>`, 64 hex digits like the
/// app's own keys.
pub fn session_key(email: &str, n: usize) -> String {
    hex::encode(Sha256::digest(format!("bench:{email}:{n}").as_bytes()))
}

/// SQL giving every user that matches `filter` (a condition on `u`, a `users` row) as many
/// signed-in sessions as `count` (an integer expression on `u`), numbered from 1.
///
/// Rows are what the app writes at sign-in (see `session_store.rs` and `routes/auth/login.rs`):
/// `id` is the SHA-256 of the session key, and `state` maps `actix_identity.user_id` and `meta`
/// to JSON-encoded strings, `meta.id` being the row's `public_id`. The sessions are inserted one
/// round at a time (every user's first session, then every user's second…), so a user's sessions
/// sit on different heap pages, as sessions signed in at different times do.
pub fn sessions_sql(filter: &str, count: &str) -> String {
    format!(
        "-- The sign-in trigger would NOTIFY once per row: no instance listens yet, and a million
         -- notifications only slow the seeding down. `replica` skips ordinary triggers for this
         -- connection only (the bench connects as a superuser).
         SET session_replication_role = replica;
         CREATE TEMP TABLE bench_plan AS
           SELECT u.id, u.org_id, u.email, u.is_admin, ({count})::int AS n FROM users u WHERE {filter};
         DO $$
         DECLARE top int;
         BEGIN
           SELECT coalesce(max(n), 0) INTO top FROM bench_plan;
           FOR s IN 1..top LOOP
             INSERT INTO sessions (id, public_id, user_id, org_id, state, created_at, last_seen_at, expires_at)
             SELECT sha256(convert_to(k.key, 'UTF8')), md5(k.key)::uuid, p.id, p.org_id,
                    jsonb_build_object(
                      'actix_identity.user_id', to_jsonb(p.id::text)::text,
                      'meta', jsonb_build_object(
                        'id', md5(k.key)::uuid, 'org_id', p.org_id, 'email', p.email,
                        'is_admin', p.is_admin, 'user_agent', NULL, 'ip', NULL, 'oidc_sid', NULL
                      )::text),
                    now(), now(), now() + interval '12 hours'
             FROM bench_plan p,
                  LATERAL (SELECT encode(sha256(convert_to('bench:' || p.email || ':' || s, 'UTF8')), 'hex') AS key) k
             WHERE p.n >= s;
           END LOOP;
         END $$;
         DROP TABLE bench_plan;
         SET session_replication_role = DEFAULT;"
    )
}

// ------------------------------------------------------------------------------------------------
// Cookies
// ------------------------------------------------------------------------------------------------

/// The instances' cookie key (given to them as `COOKIE_KEY`), to forge session cookies as the
/// app's session middleware writes them: the session key, encrypted (private cookie jar).
pub struct CookieForge {
    hex: String,
    key: Key,
}

impl CookieForge {
    pub fn new() -> Self {
        let mut bytes = [0u8; 64];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            hex: hex::encode(bytes),
            key: Key::from(&bytes),
        }
    }

    /// The environment variable that makes an instance use this key.
    pub fn env(&self) -> (&'static str, &str) {
        ("COOKIE_KEY", &self.hex)
    }

    /// The `Cookie` header value that signs in the session whose key is `session_key`.
    pub fn cookie(&self, session_key: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(Cookie::new("ual_todo", session_key.to_owned()));
        let sealed = jar.delta().next().expect("just added");
        format!("ual_todo={}", sealed.value())
    }
}

// ------------------------------------------------------------------------------------------------
// Instances
// ------------------------------------------------------------------------------------------------

/// An app instance running as a separate process.
pub struct Instance {
    pub base: String,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Killed (SIGKILL) when the instance is dropped.
    process: Child,
    /// Run under a diagnosis tool: stopped with SIGTERM, so the tool writes its report.
    wrapped: bool,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.wrapped {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            for _ in 0..300 {
                if !matches!(self.process.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Instance {
    /// Starts `ual-bench serve` on a free port and waits until `/healthz` answers.
    pub async fn start(db: &BenchDb, extra_env: &[(&str, &str)]) -> anyhow::Result<Instance> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let base = format!("http://{addr}");
        // Diagnosis: BENCH_WRAP="valgrind --tool=massif" (any command prefix) runs the instances
        // under that tool; `%p` in it becomes the process id, as valgrind expands it.
        let wrap: Vec<String> = std::env::var("BENCH_WRAP")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut command = match wrap.split_first() {
            Some((tool, args)) => {
                let mut c = Command::new(tool);
                c.args(args).arg(std::env::current_exe()?);
                c
            }
            None => Command::new(std::env::current_exe()?),
        };
        command
            .arg("serve")
            .env("DATABASE_URL", db.url.expose())
            .env("BIND", addr.to_string())
            .env("PUBLIC_URL", &base)
            .env("RUST_LOG", "warn")
            // The bench IdP serves its keys over plain http on loopback.
            .env("ALLOW_INSECURE_IDP", "true")
            // Any key: without one the app warns that it keeps its own in the database.
            .env("SECRETS_KEY", hex::encode(rand::random::<[u8; 32]>()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().context("cannot start the app")?;
        let pid = child.id().context("the app exited at once")?;
        let instance = Instance {
            base,
            addr,
            pid,
            process: child,
            wrapped: !wrap.is_empty(),
        };
        let tries = if wrap.is_empty() { 100 } else { 600 };
        for _ in 0..tries {
            if let Ok(mut conn) = RawConn::connect(addr).await
                && let Ok(r) = conn.send(&get_request(addr, "/healthz", None)).await
                && r.status == 200
            {
                return Ok(instance);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the app did not become healthy at {}", instance.base)
    }

    /// The process's resident memory, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> anyhow::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("no open files limit")?;
    line.split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .context("unreadable open files limit")
}

// ------------------------------------------------------------------------------------------------
// CPU accounting
// ------------------------------------------------------------------------------------------------

/// Clock ticks per second of `/proc` CPU times.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process, in ticks (0 if it is gone).
fn process_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces; fields resume after its closing parenthesis.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from `state` (field 3) here.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// CPU time used so far, split by who used it, to tell where a phase's CPU went.
#[derive(Clone, Debug)]
pub struct CpuSample {
    at: Instant,
    app: u64,
    pg_bench: u64,
    pg_other: u64,
    bench: u64,
    machine_busy: u64,
    machine_total: u64,
    machine_steal: u64,
}

/// A phase's CPU use, in percent of one core (the machine has `cores` of them).
#[derive(Clone, Debug)]
pub struct CpuShare {
    /// The app instances.
    pub app: f64,
    /// PostgreSQL backends connected to the bench's database.
    pub pg: f64,
    /// Every other PostgreSQL process (WAL writer, checkpointer, other databases' backends).
    pub pg_other: f64,
    /// This process: the load generator.
    pub bench: f64,
    /// The whole machine, every process.
    pub machine: f64,
    /// Time the hypervisor ran something else while this virtual machine wanted the CPU.
    pub steal: f64,
    /// Length of the phase.
    pub seconds: f64,
}

impl CpuShare {
    /// What neither the app, PostgreSQL nor the bench used: other work on the machine, which
    /// competes for its cores (builds, tests).
    pub fn others(&self) -> f64 {
        (self.machine - self.steal - self.app - self.pg - self.pg_other - self.bench).max(0.0)
    }

    /// CPU milliseconds the app and PostgreSQL spent per operation, `ops` operations having
    /// been done in the phase: what a saturated machine's throughput is the inverse of.
    pub fn per_op(&self, ops: usize) -> Vec<(String, f64)> {
        let ms = |pct: f64| pct / 100.0 * self.seconds * 1000.0 / ops.max(1) as f64;
        vec![
            ("app_cpu_ms/op".to_owned(), ms(self.app)),
            ("pg_cpu_ms/op".to_owned(), ms(self.pg)),
        ]
    }
}

impl CpuShare {
    pub fn figures(&self, prefix: &str) -> Vec<(String, f64)> {
        vec![
            (format!("{prefix}cpu_app%"), self.app),
            (format!("{prefix}cpu_pg%"), self.pg),
            (format!("{prefix}cpu_pg_other%"), self.pg_other),
            (format!("{prefix}cpu_bench%"), self.bench),
            (format!("{prefix}cpu_others%"), self.others()),
            (format!("{prefix}cpu_machine%"), self.machine),
            (format!("{prefix}cpu_steal%"), self.steal),
        ]
    }
}

/// Samples CPU time of the app instances, PostgreSQL and the bench, from `/proc`.
pub struct CpuMeter {
    app: Vec<String>,
    db_name: String,
}

impl CpuMeter {
    pub fn new(instances: &[&Instance], db: &BenchDb) -> Self {
        Self {
            app: instances.iter().map(|i| i.pid.to_string()).collect(),
            db_name: db.name.clone(),
        }
    }

    pub fn sample(&self) -> CpuSample {
        let app = self.app.iter().map(|p| process_ticks(p)).sum();
        let (mut pg_bench, mut pg_other) = (0, 0);
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() != "postgres" {
                    continue;
                }
                // A backend's title: "postgres: 15/main: <user> <database> <client> <state>".
                let title =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if title.contains(&self.db_name) {
                    pg_bench += process_ticks(pid);
                } else {
                    pg_other += process_ticks(pid);
                }
            }
        }
        let (machine_busy, machine_total, machine_steal) = machine_ticks();
        CpuSample {
            at: Instant::now(),
            app,
            pg_bench,
            pg_other,
            bench: process_ticks("self"),
            machine_busy,
            machine_total,
            machine_steal,
        }
    }
}

/// Busy, total and stolen ticks of all CPUs.
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return (0, 0, 0);
    };
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    (busy, busy + at(3) + at(4), at(7))
}

impl CpuSample {
    /// CPU used between `earlier` and this sample.
    pub fn since(&self, earlier: &CpuSample) -> CpuShare {
        let seconds = (self.at - earlier.at).as_secs_f64().max(1e-9);
        let pct =
            |now: u64, then: u64| now.saturating_sub(then) as f64 / clock_ticks() / seconds * 100.0;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let total = self
            .machine_total
            .saturating_sub(earlier.machine_total)
            .max(1) as f64;
        let share = |now: u64, then: u64| now.saturating_sub(then) as f64 / total * 100.0 * cores;
        CpuShare {
            app: pct(self.app, earlier.app),
            pg: pct(self.pg_bench, earlier.pg_bench),
            pg_other: pct(self.pg_other, earlier.pg_other),
            bench: pct(self.bench, earlier.bench),
            machine: share(self.machine_busy, earlier.machine_busy),
            steal: share(self.machine_steal, earlier.machine_steal),
            seconds,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// A lean HTTP/1.1 client
// ------------------------------------------------------------------------------------------------

/// `GET path` on a keep-alive connection, with a session cookie if given.
pub fn get_request(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Vec<u8> {
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}\r\n").into_bytes()
}

/// A Universal Logout request for `email`, authenticated by `credential` (API key or JWT).
pub fn ual_request(addr: SocketAddr, credential: &str, email: &str) -> Vec<u8> {
    let body = format!(r#"{{"sub_id":{{"format":"email","email":"{email}"}}}}"#);
    format!(
        "POST /global-token-revocation HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {credential}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A response: its status and (de-chunked) body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

/// One HTTP/1.1 connection written and read by hand: a request is its bytes, a response is read
/// to its end (Content-Length or chunked) and the connection is kept for the next. Far cheaper
/// per request than a full client, so the load generator leaves the CPU to the app.
pub struct RawConn {
    stream: TcpStream,
    /// Bytes read but not consumed yet.
    buf: Vec<u8>,
    /// Room made in `buf` before each read.
    read_size: usize,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::connect_with(addr, 16 * 1024).await
    }

    /// A connection whose reads are at most `read_size` bytes (small for idle streams).
    pub async fn connect_with(addr: SocketAddr, read_size: usize) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::new(),
            read_size,
        })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        self.buf.reserve(self.read_size);
        let n = self.stream.read_buf(&mut self.buf).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        Ok(())
    }

    async fn read_head(&mut self) -> anyhow::Result<Head> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let text = std::str::from_utf8(&self.buf[..end]).context("a non-UTF-8 response head")?;
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .context("no status line")?;
        let (mut content_length, mut chunked) = (None, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        self.buf.drain(..end);
        Ok(Head {
            status,
            content_length,
            chunked,
        })
    }

    /// The next `n` bytes.
    async fn take(&mut self, n: usize) -> anyhow::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// The next line, without its CRLF.
    async fn line(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = std::str::from_utf8(&line)?.split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size.trim(), 16).context("a bad chunk size")?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take(size).await?);
            self.take(2).await?;
        }
    }

    /// Sends a request and reads its whole response.
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<Response> {
        self.stream.write_all(request).await?;
        let head = self.read_head().await?;
        let body = if head.status == 204 || head.status == 304 || head.status < 200 {
            Vec::new()
        } else if head.chunked {
            self.read_chunked().await?
        } else if let Some(n) = head.content_length {
            self.take(n).await?
        } else {
            anyhow::bail!("a response without Content-Length or chunked encoding")
        };
        Ok(Response {
            status: head.status,
            body,
        })
    }

    /// Sends a request whose response is a stream; returns its status once the head arrived.
    pub async fn open_stream(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request).await?;
        let status = self.read_head().await?.status;
        self.buf.shrink_to(self.read_size);
        Ok(status)
    }

    /// Reads the stream until `needle` arrives (events are never split across chunks, so the
    /// raw bytes are searched as they come; only a needle's length of them is kept).
    pub async fn wait_for(&mut self, needle: &[u8]) -> anyhow::Result<()> {
        loop {
            if find(&self.buf, needle).is_some() {
                return Ok(());
            }
            let keep = self.buf.len().min(needle.len());
            self.buf.drain(..self.buf.len() - keep);
            self.fill().await?;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ------------------------------------------------------------------------------------------------
// Identity provider
// ------------------------------------------------------------------------------------------------

const RSA_KEY: &[u8] = include_bytes!("../../../tests/fixtures/keys/rsa.pem");

/// An identity provider that publishes a JWKS over HTTP and signs Universal Logout JWTs.
pub struct Idp {
    pub issuer: String,
    key: EncodingKey,
}

impl Idp {
    pub async fn start() -> anyhow::Result<Idp> {
        let key = EncodingKey::from_rsa_pem(RSA_KEY)?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
        jwk.common.key_id = Some("bench".into());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let published = Arc::new(Mutex::new((issuer.clone(), JwkSet { keys: vec![jwk] })));
        let data = web::Data::from(published);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(|d: web::Data<Mutex<(String, JwkSet)>>| async move {
                        let issuer = d.lock().unwrap().0.clone();
                        HttpResponse::Ok().json(serde_json::json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") }))
                    }),
                )
                .route(
                    "/jwks",
                    web::get().to(|d: web::Data<Mutex<(String, JwkSet)>>| async move {
                        HttpResponse::Ok().json(d.lock().unwrap().1.clone())
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        tokio::spawn(server);
        Ok(Idp { issuer, key })
    }

    /// A fresh Universal Logout JWT for an app whose client id is `client_id`.
    pub fn jwt(&self, client_id: &str, audience: &str) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("bench".into());
        header.typ = Some("global-token-revocation+jwt".into());
        let claims = serde_json::json!({
            "iss": self.issuer, "sub": client_id, "aud": audience,
            "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing with a valid key")
    }
}
