//! The command line: `serve` (the default), `migrate`, `org create`, `user create`,
//! `user set-admin`, `demo`.
//! Commands that create something take `--json` and then print exactly one JSON object.
//! Exit status: 0 done, 1 failed (nothing written), 2 bad arguments.

use std::{io::Read as _, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use crate::{
    auth::{idp_http::FetchPolicy, password},
    config::Settings,
    db::{
        self,
        models::{
            NewOrg, NewUser, Org, OrgApiKey, User,
            org::{Configured, IdpSettings, is_valid_slug, slugify},
        },
    },
    error::is_unique_violation,
    secret_box::SecretBox,
    secret_token,
    startup::Application,
};

mod user;

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

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org.
    Create {
        /// The org's display name, e.g. "Acme Corp".
        name: String,
        /// Short ID used in URLs and at sign-in (default: derived from the name).
        #[arg(long)]
        slug: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the org's identity provider: its issuer's signed JWTs may then call Universal Logout.
    SetIdp {
        /// The org's slug.
        slug: String,
        /// The IdP's issuer URL (as in its OpenID discovery document).
        #[arg(long)]
        issuer: url::Url,
        /// This app's client id at the IdP (the `sub` of its Universal Logout JWTs).
        #[arg(long)]
        client_id: String,
        /// Read the OIDC client secret (for SSO sign-in) from standard input; without it the
        /// stored secret is kept, unless the issuer or client id changes (it is then removed).
        #[arg(long)]
        client_secret_stdin: bool,
        /// Emails at this domain sign in with SSO through this org (only the operator assigns
        /// domains; public mail domains such as gmail.com are refused). Without it, none.
        #[arg(long)]
        email_domain: Option<String>,
        /// Do not create unknown users at their first SSO sign-in.
        #[arg(long)]
        no_create_users: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a new API key for an org (printed once).
    Create {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an org's API key, named by its prefix (e.g. ual_AbCd1234).
    Revoke {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The key's prefix, as `key list` shows it.
        prefix: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List an org's API keys (prefixes only: keys are never stored).
    List {
        /// The org's slug.
        #[arg(long)]
        org: String,
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

async fn manage(settings: Settings, command: Command) -> Result<(), CliError> {
    // Check arguments before touching the database.
    match &command {
        Command::Org(OrgCommand::Create { name, slug, .. }) => {
            org_slug(name, slug.as_deref())?;
        }
        Command::User(UserCommand::Create { email, .. } | UserCommand::SetAdmin { email, .. }) => {
            check_email(email)?
        }
        Command::Org(OrgCommand::SetIdp {
            issuer,
            client_id,
            email_domain,
            ..
        }) => IdpSettings {
            issuer: issuer.as_str(),
            client_id: client_id.trim(),
            client_secret: None,
            email_domain: Some(email_domain.as_deref()),
            create_users: true,
        }
        .check(idp_policy(&settings))
        .map_err(CliError::Usage)?,
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
        Command::Org(OrgCommand::Create { name, slug, json }) => {
            org_create(&mut conn, &name, slug.as_deref(), json).await
        }
        Command::User(command) => user::run(&mut conn, command).await,
        Command::Org(OrgCommand::SetIdp {
            slug,
            issuer,
            client_id,
            client_secret_stdin,
            email_domain,
            no_create_users,
            json,
        }) => {
            let secret = if client_secret_stdin {
                Some(read_secret()?)
            } else {
                None
            };
            let idp = IdpSettings {
                issuer: issuer.as_str().trim_end_matches('/'),
                client_id: client_id.trim(),
                client_secret: secret.as_ref().map(|s| s.expose_secret()),
                email_domain: Some(email_domain.as_deref()),
                create_users: !no_create_users,
            };
            idp.check(idp_policy(&settings)).map_err(CliError::Usage)?;
            org_set_idp(&mut conn, &settings, &slug, &idp, json).await
        }
        Command::Key(KeyCommand::Create { org, json }) => key_create(&mut conn, &org, json).await,
        Command::Key(KeyCommand::Revoke { org, prefix, json }) => {
            key_revoke(&mut conn, &org, &prefix, json).await
        }
        Command::Key(KeyCommand::List { org, json }) => key_list(&mut conn, &org, json).await,
        Command::Demo { json } => demo(&mut conn, &settings, json).await,
        Command::Serve | Command::Migrate => unreachable!("handled by run"),
    }
}

/// The slug to use for a new org, checked.
fn org_slug(name: &str, slug: Option<&str>) -> Result<String, CliError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CliError::Usage(
            "the org name must have 1 to 200 characters".into(),
        ));
    }
    let slug = slug.map_or_else(|| slugify(name), str::to_owned);
    if !is_valid_slug(&slug) {
        return Err(CliError::Usage(format!(
            "`{slug}` is not a valid slug: use 1 to 63 lowercase letters, digits and inner hyphens (--slug)"
        )));
    }
    Ok(slug)
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

async fn find_org(conn: &mut AsyncPgConnection, slug: &str) -> Result<Org, CliError> {
    Org::find_by_slug(conn, slug)
        .await
        .context("cannot look up the org")?
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("there is no org with the slug `{slug}`")))
}

async fn org_create(
    conn: &mut AsyncPgConnection,
    name: &str,
    slug: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let slug = org_slug(name, slug)?;
    // The org and its first key are written together or not at all.
    let created = conn
        .transaction(async |conn| {
            let org = Org::create(
                conn,
                &NewOrg {
                    name: name.trim(),
                    slug: &slug,
                },
            )
            .await?;
            let (key, issued) = OrgApiKey::create(conn, org.id).await?;
            Ok::<_, diesel::result::Error>((org, key, issued))
        })
        .await;
    let (org, key, issued) = created.map_err(|e| {
        if is_unique_violation(&e) {
            anyhow::anyhow!(
                "an org with the slug `{slug}` already exists (choose another with --slug)"
            )
        } else {
            anyhow::Error::new(e).context("cannot create the org")
        }
    })?;
    let secret = secret_token::reveal(&issued);
    if json {
        println!(
            "{}",
            json!({ "id": org.id, "name": org.name, "slug": org.slug,
                    "api_key": { "prefix": key.prefix, "key": secret } })
        );
    } else {
        println!(
            "Created org {} (slug `{}`, id {}).",
            org.name, org.slug, org.id
        );
        println!("Universal Logout API key (shown once): {secret}");
    }
    Ok(())
}

async fn org_set_idp(
    conn: &mut AsyncPgConnection,
    settings: &Settings,
    slug: &str,
    idp: &IdpSettings<'_>,
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let (secrets, _) = SecretBox::load(conn, settings).await?;
    let Configured {
        org,
        secret_dropped,
    } = Org::configure_idp(conn, org.id, idp, &secrets)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                anyhow::anyhow!(
                    "another org already uses this issuer and client id, or this email domain"
                )
            } else {
                anyhow::Error::new(e).context("cannot set the IdP")
            }
        })?;
    let sso_ready = org.idp_client_secret.is_some();
    if json {
        println!(
            "{}",
            json!({ "slug": org.slug, "issuer": org.idp_issuer, "client_id": org.idp_client_id,
                    "client_secret_set": sso_ready, "client_secret_removed": secret_dropped,
                    "email_domain": org.email_domain, "create_users": org.sso_create_users })
        );
    } else {
        println!(
            "`{}` now trusts Universal Logout JWTs from {} for client {}.",
            org.slug, idp.issuer, idp.client_id
        );
        if secret_dropped {
            println!("The issuer or client id changed, so the stored client secret was removed.");
        }
        if sso_ready {
            println!(
                "Single sign-on is ready: users choose \"Sign in with SSO\" on the sign-in page."
            );
        } else {
            println!("For single sign-on, give the client secret too (--client-secret-stdin).");
        }
    }
    Ok(())
}

/// Where the app may fetch from: what `org set-idp` accepts as an issuer.
fn idp_policy(settings: &Settings) -> FetchPolicy {
    FetchPolicy {
        allow_insecure: settings.allow_insecure_idp,
    }
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

async fn key_create(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let (key, issued) = OrgApiKey::create(conn, org.id)
        .await
        .context("cannot issue the API key")?;
    let secret = secret_token::reveal(&issued);
    if json {
        println!(
            "{}",
            json!({ "org": org.slug, "prefix": key.prefix, "key": secret })
        );
    } else {
        println!(
            "New Universal Logout API key for `{}` (shown once): {secret}",
            org.slug
        );
    }
    Ok(())
}

async fn key_revoke(
    conn: &mut AsyncPgConnection,
    slug: &str,
    prefix: &str,
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let key = OrgApiKey::revoke(conn, org.id, prefix)
        .await
        .context("cannot revoke the API key")?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "`{}` has no live API key with the prefix {prefix}",
                org.slug
            )
        })?;
    if json {
        println!(
            "{}",
            json!({ "org": org.slug, "prefix": key.prefix,
                    "revoked_at": key.revoked_at.map(|t| t.unix_timestamp()) })
        );
    } else {
        println!("Revoked API key {} of `{}`.", key.prefix, org.slug);
    }
    Ok(())
}

async fn key_list(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let keys = OrgApiKey::list_for_org(conn, org.id)
        .await
        .context("cannot list the API keys")?;
    if json {
        let keys: Vec<_> = keys
            .iter()
            .map(|k| {
                json!({
                    "prefix": k.prefix,
                    "created_at": k.created_at.unix_timestamp(),
                    "last_used_at": k.last_used_at.map(|t| t.unix_timestamp()),
                    "revoked_at": k.revoked_at.map(|t| t.unix_timestamp()),
                })
            })
            .collect();
        println!("{}", json!({ "org": org.slug, "keys": keys }));
    } else {
        for k in &keys {
            let state = if k.revoked_at.is_some() {
                "revoked"
            } else {
                "live"
            };
            println!(
                "{}  {state}  created {}",
                k.prefix,
                crate::page::format_time(&k.created_at)
            );
        }
    }
    Ok(())
}

/// The demo accounts: (email, admin).
const DEMO_USERS: [(&str, bool); 3] = [
    ("admin@acme.test", true),
    ("alice@acme.test", false),
    ("bob@acme.test", false),
];

async fn demo(
    conn: &mut AsyncPgConnection,
    settings: &Settings,
    json: bool,
) -> Result<(), CliError> {
    let org = match Org::find_by_slug(conn, "acme")
        .await
        .context("cannot look up the demo org")?
    {
        Some(org) => org,
        None => Org::create(
            conn,
            &NewOrg {
                name: "Acme",
                slug: "acme",
            },
        )
        .await
        .context("cannot create the demo org")?,
    };
    let mut accounts = Vec::new();
    for (email, admin) in DEMO_USERS {
        let password = password::generate();
        let hash = tokio::task::spawn_blocking({
            let password = password.clone();
            move || password::hash(&password)
        })
        .await
        .context("hashing stopped")??;
        match User::find_by_email(conn, org.id, email)
            .await
            .context("cannot look up a demo user")?
        {
            Some(user) => User::set_password_hash(conn, user.id, &hash).await,
            None => User::create(
                conn,
                &NewUser {
                    org_id: org.id,
                    email,
                    password_hash: Some(&hash),
                    is_admin: admin,
                },
            )
            .await
            .map(drop),
        }
        .context("cannot save a demo user")?;
        accounts.push((email, admin, password));
    }
    let (_, issued) = OrgApiKey::create(conn, org.id)
        .await
        .context("cannot issue the demo API key")?;
    let api_key = secret_token::reveal(&issued).to_owned();
    let base = settings.public_url.as_ref().map_or_else(
        || format!("http://{}", settings.bind),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    );
    if json {
        let users: Vec<_> = accounts
            .iter()
            .map(|(email, admin, password)| json!({ "email": email, "admin": admin, "password": password }))
            .collect();
        println!(
            "{}",
            json!({ "org": { "id": org.id, "name": org.name, "slug": org.slug }, "users": users,
                    "login_url": format!("{base}/login"), "api_key": api_key })
        );
    } else {
        println!(
            "Demo org {} (slug `{}`) is ready. Sign in at {base}/login with:",
            org.name, org.slug
        );
        for (email, admin, password) in &accounts {
            println!(
                "  {email:<18} {password}{}",
                if *admin { "   (admin)" } else { "" }
            );
        }
        println!("Running `demo` again gives every demo account a new password.");
        println!();
        println!("Sign alice out everywhere, as her IdP would (Universal Logout):");
        println!(
            "  curl -i -X POST {base}/global-token-revocation -H 'Authorization: Bearer {api_key}' \\\n    -H 'Content-Type: application/json' -d '{{\"sub_id\":{{\"format\":\"email\",\"email\":\"alice@acme.test\"}}}}'"
        );
    }
    Ok(())
}
