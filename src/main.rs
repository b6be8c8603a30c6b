//! The `ual-todo` command: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;

/// jemalloc: the page path allocates much (headers, rows, the rendered page); glibc's malloc
/// took about a seventh of the server's CPU in a profile of `GET /todos`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = ual_todo::cli::Cli::parse();
    ual_todo::telemetry::init("info");
    ual_todo::cli::run(cli)
}
