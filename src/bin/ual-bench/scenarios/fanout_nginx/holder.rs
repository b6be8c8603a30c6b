//! A load-generator process of `fanout-nginx` (`ual-bench hold-streams`, started by the
//! scenario): opens a live-logout stream for each seeded session of a range of users through
//! the proxy, then reports on stdout, one line each:
//! - `open N` once its N streams are open;
//! - `logout USER NANOS` when a stream of user `USER` gets its `logout` event, at `NANOS` since
//!   the Unix epoch (the wall clock: the parent and its children share the machine's, and an
//!   `Instant` does not cross processes).
//!
//! It stops when its stdin closes (the parent ended or dropped it).

use std::{
    io::{Read as _, Write as _},
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use tokio::sync::mpsc;

use crate::{
    fixture::{CookieForge, RawConn, email, get_request, session_key},
    scenarios::fanout::{LOGOUT, SESSIONS_PER_USER},
};

/// The environment variable that hands the instances' cookie key to a holder (not its command
/// line, which any local user can read).
pub const COOKIE_KEY_ENV: &str = "BENCH_COOKIE_KEY";
/// Read size of an idle stream: keep-alive comments and one event are all it ever gets.
const STREAM_READ_SIZE: usize = 256;

/// What one holder opens.
#[derive(clap::Args, Clone, Debug)]
pub struct Holding {
    /// The proxy's address (one per holder: see `Proxy::start`).
    #[arg(long)]
    pub proxy: SocketAddr,
    /// Users `<prefix><i>` for `i` in `from..to`, each with five seeded sessions.
    #[arg(long)]
    pub prefix: String,
    #[arg(long)]
    pub from: usize,
    #[arg(long)]
    pub to: usize,
    /// Streams being opened at once.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
}

/// The holder's whole life: open, report, wait for stdin to close.
pub async fn hold(holding: Holding) -> anyhow::Result<()> {
    let forge = CookieForge::from_hex(&std::env::var(COOKIE_KEY_ENV)?)?;
    let Holding {
        proxy,
        prefix,
        from,
        to,
        concurrency,
    } = holding;
    let requests: Vec<(usize, Vec<u8>)> = (from..to)
        .flat_map(|user| {
            let email = email(&prefix, user);
            (1..=SESSIONS_PER_USER)
                .map(|n| {
                    let cookie = forge.cookie(&session_key(&email, n));
                    (user, get_request(proxy, "/events", Some(&cookie)))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let held: Vec<(usize, RawConn)> = stream::iter(requests)
        .map(|(user, request)| async move {
            let mut conn = RawConn::connect_with(proxy, STREAM_READ_SIZE).await?;
            let status = conn.open_stream(&request).await?;
            anyhow::ensure!(status == 200, "GET /events answered {status}");
            Ok((user, conn))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    say(&format!("open {}", held.len()))?;

    let (tx, mut arrivals) = mpsc::unbounded_channel();
    for (user, mut conn) in held {
        let tx = tx.clone();
        tokio::spawn(async move {
            if conn.wait_for(LOGOUT).await.is_ok() {
                let _ = tx.send((user, unix_nanos()));
            }
        });
    }
    drop(tx);
    // Read on a thread of its own until the parent closes the pipe.
    let mut parent_gone = tokio::task::spawn_blocking(|| {
        let mut byte = [0u8; 1];
        while std::io::stdin().read(&mut byte).is_ok_and(|n| n > 0) {}
    });
    loop {
        tokio::select! {
            arrival = arrivals.recv() => match arrival {
                Some((user, at)) => say(&format!("logout {user} {at}"))?,
                // Every stream ended: nothing more to report.
                None => return Ok(()),
            },
            _ = &mut parent_gone => return Ok(()),
        }
    }
}

/// The wall clock, in nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// One line to the parent, at once.
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}
