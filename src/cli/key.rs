//! `key create`, `key list` and `key revoke`.

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{CliError, Credential, find_org, print_credentials, print_revoked};
use crate::{db::models::OrgApiKey, secret_token};

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

/// Runs a `key` command.
pub(super) async fn run(conn: &mut AsyncPgConnection, command: KeyCommand) -> Result<(), CliError> {
    match command {
        KeyCommand::Create { org, json } => create(conn, &org, json).await,
        KeyCommand::Revoke { org, prefix, json } => revoke(conn, &org, &prefix, json).await,
        KeyCommand::List { org, json } => list(conn, &org, json).await,
    }
}

async fn create(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
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

async fn revoke(
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
    print_revoked(&org.slug, "API key", &credential(&key), json);
    Ok(())
}

async fn list(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let all = OrgApiKey::list_for_org(conn, org.id)
        .await
        .context("cannot list the API keys")?;
    let listed: Vec<_> = all.iter().map(credential).collect();
    print_credentials(&org.slug, "keys", &listed, json);
    Ok(())
}

fn credential(key: &OrgApiKey) -> Credential<'_> {
    Credential {
        prefix: &key.prefix,
        created_at: key.created_at,
        last_used_at: key.last_used_at,
        revoked_at: key.revoked_at,
    }
}
