//! The command line, one module per command group:
//! - `serve` (the default) and `migrate`, here;
//! - `org create`, `org set-idp`, `org disable`, `org enable` in [`org`];
//! - `key create`, `key list`, `key revoke` in [`key`];
//! - `user create`, `user set-admin` in [`user`];
//! - `demo` in [`demo`].
//!
//! Commands that change something take `--json` and then print exactly one JSON object.
//! Exit status: 0 done, 1 failed (nothing written), 2 bad arguments.

use std::{io::Read as _, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use secrecy::SecretString;

use crate::{
    auth::password,
    config::Settings,
    db::{
        self,
        ids::OrgId,
        models::{NewUser, Org, User},
    },
    error::is_unique_violation,
    startup::Application,
};

mod demo;
mod key;
mod org;
mod user;

pub use key::KeyCommand;
pub use org::OrgCommand;
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
    /// Create (or reset) the demo org `acme` with an admin and two users, and print how to sign in.
    Demo {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments were wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The command could not be carried out (exit status 1).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
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
        Command::Demo { json } => demo::run(&mut conn, &settings, json).await,
        Command::Serve | Command::Migrate => unreachable!("handled by run"),
    }
}

fn check_email(email: &str) -> Result<(), CliError> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "`{email}` is not an email address"
        )))
    }
}

fn read_password() -> Result<String, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .take(password::MAX_PASSWORD_BYTES as u64 + 2)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
    password::check_new(&password).map_err(CliError::Usage)?;
    Ok(password)
}

/// A secret from standard input, without its trailing newline.
fn read_secret() -> Result<SecretString, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("cannot read the client secret from standard input")?;
    let secret = input.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(CliError::Usage(
            "the client secret on standard input is empty".into(),
        ));
    }
    Ok(SecretString::from(secret))
}

async fn find_org(conn: &mut AsyncPgConnection, slug: &str) -> Result<Org, CliError> {
    Org::find_by_slug(conn, slug)
        .await
        .context("cannot look up the org")?
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("there is no org with the slug `{slug}`")))
}

/// Creates a user who signs in with a password (its argon2 `hash`).
async fn create_user(
    conn: &mut AsyncPgConnection,
    org_id: OrgId,
    email: &str,
    hash: &str,
    is_admin: bool,
) -> diesel::QueryResult<User> {
    let user = NewUser {
        org_id,
        email,
        password_hash: Some(hash),
        is_admin,
    };
    User::create(conn, &user).await
}

/// A failed write, told to the operator: `taken` when it broke a unique constraint (the name
/// is in use), else the cause under `context`.
fn write_error(
    error: diesel::result::Error,
    taken: String,
    context: &'static str,
) -> anyhow::Error {
    if is_unique_violation(&error) {
        anyhow::Error::msg(taken)
    } else {
        anyhow::Error::new(error).context(context)
    }
}

/// Hashes a new password off the async thread (argon2 is slow on purpose).
async fn hash_password(password: &str) -> Result<String, CliError> {
    let password = password.to_owned();
    Ok(
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .context("hashing stopped")??,
    )
}
