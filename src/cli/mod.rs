//! The command line, one module per command group:
//! - `serve` (the default) and `migrate`, here;
//! - `org create`, `org set-idp`, `org set-admin-group`, `org disable`, `org enable` in [`org`],
//!   `org logout-all` in [`org_logout`];
//! - `key create`, `key list`, `key revoke` in [`key`];
//! - `scim-token create`, `scim-token list`, `scim-token revoke` in [`scim_token`];
//! - `user create`, `user set-admin` in [`user`];
//! - `demo` in [`demo`].
//!
//! Commands that change something take `--json` and then print exactly one JSON object.
//! Exit status: 0 done, 1 failed (nothing written), 2 bad arguments.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use crate::{config::Settings, db, startup::Application};

mod common;
mod demo;
mod key;
mod org;
mod org_logout;
mod scim_token;
mod ssf;
mod user;

pub use common::CliError;

pub use key::KeyCommand;
pub use org::OrgCommand;
pub use scim_token::ScimTokenCommand;
pub use user::UserCommand;

/// ual-todo: a todo app that answers Universal Logout.
#[derive(Debug, Parser)]
#[command(name = "ual-todo", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app (what runs when no command is given).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Manage orgs (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the API keys an org's IdP uses to call Universal Logout.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the tokens an org's IdP uses to provision users and groups over SCIM.
    #[command(subcommand)]
    ScimToken(ScimTokenCommand),
    /// Create (or reset) the demo org `acme` with an admin and two users, and print how to sign in.
    Demo {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a parsed command line and reports how it went.
pub fn run(cli: Cli) -> ExitCode {
    let settings = cli.settings;
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).map_err(CliError::Failed),
        Command::Migrate => db::prepare(&settings.database_url)
            .map_err(CliError::Failed)
            .map(|()| {
                tracing::info!("the database is up to date");
            }),
        command => runtime().and_then(|rt| rt.block_on(manage(settings, command))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        Application::build(settings)
            .await?
            .run_until_stopped()
            .await?;
        Ok(())
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(CliError::Failed)
}

/// Runs a command that works on the database.
async fn manage(settings: Settings, command: Command) -> Result<(), CliError> {
    // Check arguments before touching the database.
    match &command {
        Command::Org(command) => command.check(&settings)?,
        Command::User(command) => command.check()?,
        _ => {}
    }
    let url = settings.database_url.clone();
    tokio::task::spawn_blocking(move || db::prepare(&url))
        .await
        .context("database preparation stopped")??;
    let mut conn = AsyncPgConnection::establish(settings.database_url.expose())
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", settings.database_url))?;
    match command {
        Command::Org(command) => org::run(&mut conn, &settings, command).await,
        Command::User(command) => user::run(&mut conn, command).await,
        Command::Key(command) => key::run(&mut conn, command).await,
        Command::ScimToken(command) => scim_token::run(&mut conn, command).await,
        Command::Demo { json } => demo::run(&mut conn, &settings, json).await,
        Command::Serve | Command::Migrate => unreachable!("handled by run"),
    }
}
