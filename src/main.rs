//! The `ual-todo` command: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = ual_todo::cli::Cli::parse();
    ual_todo::telemetry::init("info");
    ual_todo::cli::run(cli)
}
