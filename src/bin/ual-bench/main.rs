//! `ual-bench`: the benchmarks behind every figure in README's Performance section.
//!
//! Each scenario creates its own database on the local PostgreSQL, seeds it, starts the app as
//! separate processes (this binary, re-run as `ual-bench serve`, so the server is exactly the code
//! built with it), drives them over real HTTP, prints a table and writes it as JSON under
//! `target/bench/`. Run with `cargo run --release --bin ual-bench -- SCENARIO`.

mod fixture;
mod report;
mod scenarios;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Internal: serve the app (what the scenarios start as separate processes).
    #[command(hide = true)]
    Serve {
        #[command(flatten)]
        settings: Box<ual_todo::config::Settings>,
    },
}

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
                match command {
                    Command::Ual { calls } => scenarios::ual::run(calls).await,
                    Command::Serve { .. } => unreachable!(),
                }
            });
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
