//! `ual-bench`: the benchmarks behind every figure in README's Performance section.
//!
//! Each scenario creates its own database on the local PostgreSQL, seeds it, starts the app as
//! separate processes (this binary, re-run as `ual-bench serve`, so the server is exactly the code
//! built with it), drives them over real HTTP, prints a table and writes it as JSON under
//! `target/bench/`. Run with `cargo run --release --bin ual-bench -- SCENARIO`; progress goes to
//! stderr. A scenario drops its database and kills its processes when it ends, fails or is
//! interrupted (Ctrl-C).

mod fixture;
mod report;
mod scenarios;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    fixture::progress,
    report::Row,
    scenarios::{
        fanout, pages,
        ual_big::{self, Load, Scale},
    },
};

/// Benchmarks for ual-todo.
#[derive(Parser)]
#[command(name = "ual-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Latency of one Universal Logout call (API key and JWT), one call at a time.
    Ual {
        /// Calls per credential kind.
        #[arg(long, default_value_t = 100)]
        calls: usize,
    },
    /// Live-logout fan-out: time from a UAL request to the `logout` event on each of the user's
    /// streams, with N streams open over two instances; and server memory per open stream.
    Fanout {
        /// Open streams (five per user), one run per value.
        #[arg(long, value_delimiter = ',', default_values_t = [100, 1_000, 10_000])]
        streams: Vec<usize>,
        /// Users revoked per run (five samples each).
        #[arg(long, default_value_t = 250)]
        revoke_users: usize,
    },
    /// Live-logout fan-out through nginx (`deploy/nginx/ual-todo.conf`): N streams opened
    /// through the proxy by several client processes, spread by nginx over the instances; UAL
    /// (through the proxy) → every one of the user's tabs told; memory per stream per instance.
    FanoutNginx {
        /// Open streams (five per user).
        #[arg(long, default_value_t = 30_000)]
        streams: usize,
        /// Instances behind nginx.
        #[arg(long, default_value_t = 3)]
        instances: usize,
        /// Client processes holding the streams (one may hold 20,000 open files here).
        #[arg(long, default_value_t = 3)]
        holders: usize,
        /// Users revoked (five tabs each).
        #[arg(long, default_value_t = 250)]
        revoke_users: usize,
    },
    /// What one revocation costs the database and the instances as the number of listening
    /// instances grows (every instance hears every NOTIFY): one run per instance count.
    NotifyCost {
        /// Listening instances, one run per value.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 3, 10])]
        instances: Vec<usize>,
        /// Open streams, spread over the instances (five per user).
        #[arg(long, default_value_t = 1_000)]
        streams: usize,
        /// Users revoked one after another, each request sent to the first instance.
        #[arg(long, default_value_t = 3_000)]
        revocations: usize,
    },
    /// UAL latency and throughput with 1,000,000 session rows (and a tenth and ten times that).
    UalBig {
        /// Run at a tenth of the data too (100,000 rows, 10,000 users).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        tenth: bool,
        /// Run at full size (1,000,000 rows, 100,000 users).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        full: bool,
        /// Run at ten times the size too (10,000,000 rows, 1,000,000 users: 5 GB, about eight
        /// minutes, most of it seeding; not part of `all`, which must finish in ten).
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        tenfold: bool,
        /// Sequential calls per credential kind.
        #[arg(long, default_value_t = 500)]
        calls: usize,
        /// Concurrent callers of the sustained run.
        #[arg(long, default_value_t = 32)]
        callers: usize,
        /// Seconds of the sustained run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The `sessions` table at N rows: heap and index sizes, and the sweeper's cost with
    /// nothing expired and with a share of the rows expired.
    SessionsTable {
        #[arg(long, default_value_t = 10_000_000)]
        rows: usize,
        /// Percent of the rows expired before the timed sweep.
        #[arg(long, default_value_t = 1.0)]
        expired_pct: f64,
    },
    /// `GET /todos` throughput over keep-alive connections, one instance with two workers.
    Pages {
        /// Todos of the user whose page is asked for, one run per value.
        #[arg(long, value_delimiter = ',', default_values_t = [2, 20, 200])]
        todos: Vec<usize>,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Universal Logout latency while `GET /todos` saturates the server, against its idle
    /// latency; and the pages' throughput with and without the revocations.
    UalUnderLoad {
        /// UAL calls on the idle server.
        #[arg(long, default_value_t = 300)]
        calls: usize,
        /// Seconds of page load (alone, then with UAL calls).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Server memory after many password sign-ins and sign-outs, four at a time.
    SigninSoak {
        /// Sign-in/sign-out cycles after the warm-up.
        #[arg(long, default_value_t = 2_600)]
        cycles: usize,
    },
    /// SCIM deprovisioning: time from `PATCH /scim/v2/Users/{id}` (`active: false`) to the
    /// `logout` event on each open tab of the user, with N streams open over two instances.
    ScimDeactivate {
        /// Open streams (five per user), one run per value.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000])]
        streams: Vec<usize>,
        /// Users deactivated per run.
        #[arg(long, default_value_t = 250)]
        users: usize,
    },
    /// SCIM lookup: `GET /scim/v2/Users?filter=userName eq "…"` in an org of N users.
    ScimFilter {
        /// Users in the org.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Lookups measured, one at a time (the app allows an org 600 SCIM requests a minute
        /// per instance).
        #[arg(long, default_value_t = 500)]
        calls: usize,
    },
    /// Sign out everyone in an org of N users (five sessions each) from the dashboard, while
    /// Universal Logout requests for another org's users arrive every 10 ms: the run's total
    /// time and the UAL latency meanwhile.
    OrgLogout {
        /// Users of the org signed out.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Users whose five sessions each hold an open live-logout stream.
        #[arg(long, default_value_t = 200)]
        stream_users: usize,
    },
    /// Shared Signals push: a session-revoked SET → `logout` event on each of the user's
    /// streams, N streams open over two instances; then SETs accepted per second.
    Ssf {
        /// Open streams (five per user) for the latency run; 0 skips it.
        #[arg(long, default_value_t = 10_000)]
        streams: usize,
        /// Users signed out in the latency run.
        #[arg(long, default_value_t = 250)]
        users: usize,
        /// SETs pushed in the throughput run; 0 skips it.
        #[arg(long, default_value_t = 8_000)]
        sets: usize,
        /// Concurrent transmitter connections in the throughput run.
        #[arg(long, default_value_t = 32)]
        connections: usize,
    },
    /// Every scenario above with its defaults (but the SCIM ones, org-logout and ssf): one table,
    /// `target/bench/all.json`.
    All,
    /// Internal: a load-generator process of `fanout-nginx`.
    #[command(hide = true)]
    HoldStreams {
        #[command(flatten)]
        holding: scenarios::fanout_nginx::holder::Holding,
    },
    /// Internal: serve the app (what the scenarios start as separate processes).
    #[command(hide = true)]
    Serve {
        #[command(flatten)]
        settings: Box<ual_todo::config::Settings>,
    },
}

/// jemalloc: the page path allocates much (headers, rows, the rendered page); glibc's malloc
/// took about a seventh of the server's CPU in a profile of `GET /todos`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { settings } => {
            ual_todo::telemetry::init("warn");
            ual_todo::cli::run(ual_todo::cli::Cli {
                settings: *settings,
                command: None,
            })
        }
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let result = runtime.block_on(async move {
                // Interrupted, the scenario's future is dropped: its instances are killed and its
                // database dropped, as on an error.
                tokio::select! {
                    result = bench(command) => result,
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn bench(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ual { calls } => report::publish("ual", &scenarios::ual::run(calls).await?),
        Command::Fanout {
            streams,
            revoke_users,
        } => report::publish("fanout", &fanout::run(&streams, revoke_users).await?),
        Command::FanoutNginx {
            streams,
            instances,
            holders,
            revoke_users,
        } => {
            let setup = scenarios::fanout_nginx::Setup {
                streams,
                instances,
                holders,
                revoke_users,
            };
            report::publish(
                "fanout-nginx",
                &[scenarios::fanout_nginx::run(setup).await?],
            )
        }
        Command::NotifyCost {
            instances,
            streams,
            revocations,
        } => report::publish(
            "notify-cost",
            &scenarios::notify_cost::run(&instances, streams, revocations).await?,
        ),
        Command::SessionsTable { rows, expired_pct } => report::publish(
            "sessions-table",
            &[scenarios::sessions_table::run(rows, expired_pct).await?],
        ),
        Command::HoldStreams { holding } => scenarios::fanout_nginx::holder::hold(holding).await,
        Command::UalBig {
            tenth,
            full,
            tenfold,
            calls,
            callers,
            seconds,
        } => {
            let scales: Vec<Scale> = [
                (tenth, Scale::TENTH),
                (full, Scale::FULL),
                (tenfold, Scale::TENFOLD),
            ]
            .into_iter()
            .filter_map(|(on, scale)| on.then_some(scale))
            .collect();
            let load = Load {
                calls,
                callers,
                duration: Duration::from_secs(seconds),
            };
            report::publish("ual-big", &ual_big::run(&scales, load).await?)
        }
        Command::Pages {
            todos,
            connections,
            seconds,
        } => report::publish(
            "pages",
            &pages::run(&todos, connections, Duration::from_secs(seconds)).await?,
        ),
        Command::UalUnderLoad { calls, seconds } => report::publish(
            "ual-under-load",
            &scenarios::ual_under_load::run(calls, seconds).await?,
        ),
        Command::SigninSoak { cycles } => {
            report::publish("signin-soak", &scenarios::signin_soak::run(cycles).await?)
        }
        Command::ScimDeactivate { streams, users } => report::publish(
            "scim-deactivate",
            &scenarios::scim_deactivate::run(&streams, users).await?,
        ),
        Command::ScimFilter { users, calls } => report::publish(
            "scim-filter",
            &scenarios::scim_filter::run(users, calls).await?,
        ),
        Command::OrgLogout {
            users,
            stream_users,
        } => report::publish(
            "org-logout",
            &scenarios::org_logout::run(users, stream_users).await?,
        ),
        Command::Ssf {
            streams,
            users,
            sets,
            connections,
        } => {
            let mut rows = Vec::new();
            if streams > 0 {
                rows.push(scenarios::ssf::latency(streams, users).await?);
            }
            if sets > 0 {
                rows.push(scenarios::ssf::sustained(sets, connections).await?);
            }
            report::publish("ssf", &rows)
        }
        Command::All => all().await,
        Command::Serve { .. } => unreachable!("handled in main"),
    }
}

/// Every scenario, one after another; a failed scenario is reported and the others still run.
async fn all() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = Vec::new();
    let load = Load {
        calls: 500,
        callers: 32,
        duration: Duration::from_secs(10),
    };
    let results = [
        ("ual", scenarios::ual::run(100).await),
        ("fanout", fanout::run(&[100, 1_000, 10_000], 250).await),
        (
            "ual-big",
            ual_big::run(&[Scale::TENTH, Scale::FULL], load).await,
        ),
        (
            "pages",
            pages::run(&[2, 20, 200], 64, Duration::from_secs(10)).await,
        ),
        (
            "ual-under-load",
            scenarios::ual_under_load::run(300, 10).await,
        ),
        ("signin-soak", scenarios::signin_soak::run(2_600).await),
    ];
    for (name, result) in results {
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("error: {name}: {e:#}");
                failed.push(name);
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    rows.push(
        Row::new("all", "wall time of every scenario")
            .figure("seconds", wall)
            .at_most("seconds", 600.0),
    );
    report::publish("all", &rows)?;
    progress!("all: {wall:.0}s");
    anyhow::ensure!(failed.is_empty(), "scenarios failed: {failed:?}");
    Ok(())
}
