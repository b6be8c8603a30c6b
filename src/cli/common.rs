//! What the command groups share: the error they stop with, and reading and checking input.

use std::io::Read as _;

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use secrecy::SecretString;

use crate::{
    auth::password,
    db::{
        ids::{ManagedBy, OrgId},
        models::{NewUser, Org, User},
    },
    error::is_unique_violation,
};

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

pub fn check_email(email: &str) -> Result<(), CliError> {
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

pub fn read_password() -> Result<String, CliError> {
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
pub fn read_secret() -> Result<SecretString, CliError> {
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

pub async fn find_org(conn: &mut AsyncPgConnection, slug: &str) -> Result<Org, CliError> {
    Org::find_by_slug(conn, slug)
        .await
        .context("cannot look up the org")?
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("there is no org with the slug `{slug}`")))
}

/// Creates a user who signs in with a password (its argon2 `hash`).
pub async fn create_user(
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
        managed_by: ManagedBy::Local,
    };
    User::create(conn, &user).await
}

/// A failed write, told to the operator: `taken` when it broke a unique constraint (the name
/// is in use), else the cause under `context`.
pub fn write_error(
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
pub async fn hash_password(password: &str) -> Result<String, CliError> {
    let password = password.to_owned();
    Ok(
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .context("hashing stopped")??,
    )
}

/// A bearer credential (API key, SCIM token) as `list` and `revoke` commands print it.
pub struct Credential<'a> {
    pub prefix: &'a str,
    pub created_at: time::OffsetDateTime,
    pub last_used_at: Option<time::OffsetDateTime>,
    pub revoked_at: Option<time::OffsetDateTime>,
}

/// Prints an org's credentials: one JSON object listing them under `field`, or a line each.
pub fn print_credentials(org: &str, field: &str, credentials: &[Credential<'_>], json: bool) {
    if json {
        let items: Vec<_> = credentials
            .iter()
            .map(|c| {
                serde_json::json!({
                    "prefix": c.prefix,
                    "created_at": c.created_at.unix_timestamp(),
                    "last_used_at": c.last_used_at.map(|t| t.unix_timestamp()),
                    "revoked_at": c.revoked_at.map(|t| t.unix_timestamp()),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "org": org, field: items }));
        return;
    }
    for c in credentials {
        let state = if c.revoked_at.is_some() {
            "revoked"
        } else {
            "live"
        };
        let created = crate::page::format_time(&c.created_at);
        println!("{}  {state}  created {created}", c.prefix);
    }
}

/// Prints that `what` (say "API key") `revoked` of `org` was revoked.
pub fn print_revoked(org: &str, what: &str, revoked: &Credential<'_>, json: bool) {
    if json {
        let at = revoked.revoked_at.map(|t| t.unix_timestamp());
        println!(
            "{}",
            serde_json::json!({ "org": org, "prefix": revoked.prefix, "revoked_at": at })
        );
    } else {
        println!("Revoked {what} {} of `{org}`.", revoked.prefix);
    }
}
