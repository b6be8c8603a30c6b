//! `user create`, `user set-admin`, `user suspend|reactivate` and `user break-glass`.

use anyhow::Context as _;
use clap::Subcommand;
use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{
    CliError, check_email, create_user, find_org, hash_password, read_password, write_error,
};
use crate::{
    auth::password,
    db::{
        ids::AccountState,
        models::{Org, User},
    },
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
    /// Suspend a user: every session and access token ends at once (open tabs are signed out
    /// live) and nothing lets them in until reactivated. Their todos are kept.
    Suspend(UserArgs),
    /// Let a suspended user sign in again (nothing that ended comes back).
    Reactivate(UserArgs),
    /// Allow (`true`) or forbid (`false`) password sign-in for a user of an org with SSO.
    BreakGlass {
        #[command(flatten)]
        user: UserArgs,
        /// `true` or `false`.
        #[arg(value_parser = clap::value_parser!(bool), action = clap::ArgAction::Set)]
        allowed: bool,
    },
}

/// Which user, and how to print the result.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// The org's slug.
    #[arg(long)]
    org: String,
    /// The user's email (any case).
    #[arg(long)]
    email: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl UserCommand {
    /// Checks the arguments, before anything touches the database.
    pub(super) fn check(&self) -> Result<(), CliError> {
        match self {
            UserCommand::Create { email, .. } | UserCommand::SetAdmin { email, .. } => {
                check_email(email)
            }
            UserCommand::Suspend(user)
            | UserCommand::Reactivate(user)
            | UserCommand::BreakGlass { user, .. } => check_email(&user.email),
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
        UserCommand::Suspend(user) => set_state(conn, &user, AccountState::Suspended).await,
        UserCommand::Reactivate(user) => set_state(conn, &user, AccountState::Active).await,
        UserCommand::BreakGlass { user, allowed } => break_glass(conn, &user, allowed).await,
    }
}

/// The user `args` name, with their org.
async fn find_user(conn: &mut AsyncPgConnection, args: &UserArgs) -> Result<(Org, User), CliError> {
    let org = find_org(conn, &args.org).await?;
    let user = User::find_by_email(conn, org.id, &args.email)
        .await
        .context("cannot look up the user")?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the org `{}` has no user with the email {}",
                org.slug,
                args.email
            )
        })?;
    Ok((org, user))
}

/// Suspends or reactivates through [`revocation::set_state`], which ends sessions and tokens.
async fn set_state(
    conn: &mut AsyncPgConnection,
    args: &UserArgs,
    to: AccountState,
) -> Result<(), CliError> {
    let (org, user) = find_user(conn, args).await?;
    let change = revocation::set_state(conn, org.id, user.id, to, Requester::COMMAND_LINE)
        .await
        .context("cannot change the user's state")?
        .ok_or_else(|| anyhow::anyhow!("the user {} no longer exists", user.email))?;
    let ended = change.outcome.as_ref();
    let (sessions, tokens) = ended.map_or((0, 0), |o| (o.sessions_ended, o.tokens_revoked));
    if args.json {
        println!(
            "{}",
            json!({ "id": user.id, "org": org.slug, "email": user.email,
                    "state": change.user.state, "changed": change.changed,
                    "sessions_ended": sessions, "tokens_revoked": tokens })
        );
    } else if !change.changed {
        println!("{} is already {}.", user.email, change.user.state);
    } else if to == AccountState::Suspended {
        println!(
            "Suspended {} in `{}`: {sessions} session(s) ended, {tokens} token(s) revoked.",
            user.email, org.slug
        );
    } else {
        println!(
            "Reactivated {} in `{}`: they can sign in again.",
            user.email, org.slug
        );
    }
    Ok(())
}

/// Sets the break-glass flag through [`revocation::set_break_glass`], which audits it.
async fn break_glass(
    conn: &mut AsyncPgConnection,
    args: &UserArgs,
    allowed: bool,
) -> Result<(), CliError> {
    let (org, user) = find_user(conn, args).await?;
    let user = revocation::set_break_glass(conn, org.id, user.id, allowed, Requester::COMMAND_LINE)
        .await
        .context("cannot change break-glass")?
        .ok_or_else(|| anyhow::anyhow!("the user {} no longer exists", user.email))?;
    if args.json {
        println!(
            "{}",
            json!({ "id": user.id, "org": org.slug, "email": user.email,
                    "break_glass": user.break_glass, "sso": org.has_sso() })
        );
    } else if user.break_glass {
        println!(
            "{} may sign in with a password even though `{}` has SSO.",
            user.email, org.slug
        );
    } else if org.has_sso() {
        println!("{} signs in only with SSO at `{}`.", user.email, org.slug);
    } else {
        println!(
            "{} is not break-glass (it matters once `{}` has SSO).",
            user.email, org.slug
        );
    }
    Ok(())
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
