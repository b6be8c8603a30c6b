//! `key create`, `key list` and `key revoke`.

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{CliError, find_org};
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

async fn list(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
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
