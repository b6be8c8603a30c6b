//! `scim-token create`, `scim-token list` and `scim-token revoke`: the credentials of an org's SCIM
//! client (its IdP provisioning users and groups at `/scim/v2`).

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{CliError, Credential, find_org, print_credentials, print_revoked};
use crate::{db::models::ScimToken, secret_token};

#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Issue a new SCIM token for an org (printed once).
    Create {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an org's SCIM token, named by its prefix (e.g. scim_AbCd1234).
    Revoke {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The token's prefix, as `scim-token list` shows it.
        prefix: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List an org's SCIM tokens (prefixes only: tokens are never stored).
    List {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `scim-token` command.
pub(super) async fn run(
    conn: &mut AsyncPgConnection,
    command: ScimTokenCommand,
) -> Result<(), CliError> {
    match command {
        ScimTokenCommand::Create { org, json } => create(conn, &org, json).await,
        ScimTokenCommand::Revoke { org, prefix, json } => revoke(conn, &org, &prefix, json).await,
        ScimTokenCommand::List { org, json } => list(conn, &org, json).await,
    }
}

async fn create(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let (token, issued) = ScimToken::create(conn, org.id)
        .await
        .context("cannot issue the SCIM token")?;
    let secret = secret_token::reveal(&issued);
    if json {
        println!(
            "{}",
            json!({ "org": org.slug, "prefix": token.prefix, "token": secret })
        );
    } else {
        println!("New SCIM token for `{}` (shown once): {secret}", org.slug);
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
    let token = ScimToken::revoke(conn, org.id, prefix)
        .await
        .context("cannot revoke the SCIM token")?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "`{}` has no live SCIM token with the prefix {prefix}",
                org.slug
            )
        })?;
    print_revoked(&org.slug, "SCIM token", &credential(&token), json);
    Ok(())
}

async fn list(conn: &mut AsyncPgConnection, slug: &str, json: bool) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let all = ScimToken::list_for_org(conn, org.id)
        .await
        .context("cannot list the SCIM tokens")?;
    let listed: Vec<_> = all.iter().map(credential).collect();
    print_credentials(&org.slug, "tokens", &listed, json);
    Ok(())
}

fn credential(token: &ScimToken) -> Credential<'_> {
    Credential {
        prefix: &token.prefix,
        created_at: token.created_at,
        last_used_at: token.last_used_at,
        revoked_at: token.revoked_at,
    }
}
