//! `user create` and `user set-admin`.

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{
    CliError, check_email, create_user, find_org, hash_password, read_password, write_error,
};
use crate::{
    auth::password,
    db::models::User,
    revocation::{self, Requester, RoleError},
};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in an org; a strong password is generated unless --password-stdin is given.
    Create {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The user's email (unique within the org, whatever its case).
        #[arg(long)]
        email: String,
        /// Make the user an admin of the org.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a user an admin of their org (`true`) or not (`false`). A demoted admin's open
    /// dashboards stop receiving the org's live feed at once; the org's last admin stays one.
    SetAdmin {
        /// The org's slug.
        #[arg(long)]
        org: String,
        /// The user's email (any case).
        #[arg(long)]
        email: String,
        /// `true` or `false`.
        #[arg(value_parser = clap::value_parser!(bool), action = clap::ArgAction::Set)]
        admin: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl UserCommand {
    /// Checks the arguments, before anything touches the database.
    pub(super) fn check(&self) -> Result<(), CliError> {
        match self {
            UserCommand::Create { email, .. } | UserCommand::SetAdmin { email, .. } => {
                check_email(email)
            }
        }
    }
}

/// Runs a `user` command.
pub(super) async fn run(
    conn: &mut AsyncPgConnection,
    command: UserCommand,
) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            org,
            email,
            admin,
            password_stdin,
            json,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            user_create(conn, &org, &email, admin, password, json).await
        }
        UserCommand::SetAdmin {
            org,
            email,
            admin,
            json,
        } => set_admin(conn, &org, &email, admin, json).await,
    }
}

async fn user_create(
    conn: &mut AsyncPgConnection,
    org_slug: &str,
    email: &str,
    admin: bool,
    password: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    check_email(email)?;
    let org = find_org(conn, org_slug).await?;
    let generated = password.is_none();
    let password = password.unwrap_or_else(password::generate);
    let hash = hash_password(&password).await?;
    let user = create_user(conn, org.id, email, &hash, admin)
        .await
        .map_err(|e| {
            let taken = format!(
                "the org `{}` already has a user with the email {email}",
                org.slug
            );
            write_error(e, taken, "cannot create the user")
        })?;
    if json {
        let mut out =
            json!({ "id": user.id, "org": org.slug, "email": user.email, "admin": user.is_admin });
        if generated {
            out["password"] = json!(password);
        }
        println!("{out}");
    } else {
        let role = if admin { "admin" } else { "user" };
        println!(
            "Created {role} {} in `{}` (id {}).",
            user.email, org.slug, user.id
        );
        if generated {
            println!("Password (shown once): {password}");
        }
    }
    Ok(())
}

/// Sets the role through [`revocation::set_admin`], which announces it to every instance.
async fn set_admin(
    conn: &mut AsyncPgConnection,
    org_slug: &str,
    email: &str,
    admin: bool,
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, org_slug).await?;
    let no_user = || anyhow::anyhow!("the org `{}` has no user with the email {email}", org.slug);
    let user = User::find_by_email(conn, org.id, email)
        .await
        .context("cannot look up the user")?
        .ok_or_else(no_user)?;
    let change =
        match revocation::set_admin(conn, org.id, user.id, admin, Requester::COMMAND_LINE).await {
            Ok(change) => change.ok_or_else(no_user)?,
            Err(RoleError::LastAdmin(email)) => {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "{email} is the only administrator of `{}`: make another user an admin first",
                    org.slug
                )));
            }
            Err(RoleError::Database(e)) => {
                return Err(anyhow::Error::new(e)
                    .context("cannot change the role")
                    .into());
            }
        };
    let user = &change.user;
    if json {
        println!(
            "{}",
            json!({ "id": user.id, "org": org.slug, "email": user.email,
                    "admin": user.is_admin, "changed": change.changed })
        );
    } else {
        let role = if user.is_admin {
            "an admin"
        } else {
            "not an admin"
        };
        let state = if change.changed { "now" } else { "already" };
        println!("{} is {state} {role} of `{}`.", user.email, org.slug);
    }
    Ok(())
}
