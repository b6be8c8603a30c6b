//! `org logout-all`: an operator signs out everyone in an org, sparing no session.

use diesel_async::AsyncPgConnection;
use serde_json::json;

use super::common::{CliError, find_org};
use crate::revocation::{
    Requester,
    org::{OrgLogoutError, sign_out_org},
};

/// Ends every session and personal access token of every user of the org `slug` (admins
/// included), batch by batch, each user audited with source `operator`, every open tab told.
pub(super) async fn logout_all(
    conn: &mut AsyncPgConnection,
    slug: &str,
    json: bool,
) -> Result<(), CliError> {
    let org = find_org(conn, slug).await?;
    let run = match sign_out_org(conn, org.id, None, Requester::COMMAND_LINE).await {
        Ok(run) => run,
        Err(OrgLogoutError::AlreadyRunning(run)) => {
            return Err(CliError::Failed(anyhow::anyhow!(
                "a sign-out of everyone in `{}` is already running ({} of {} users done, \
                 started by {}); try again when it has finished",
                org.slug,
                run.users_done,
                run.users_total,
                run.actor
            )));
        }
        Err(OrgLogoutError::Database(e)) => {
            return Err(CliError::Failed(
                anyhow::Error::new(e).context("cannot sign out everyone in the org"),
            ));
        }
    };
    if json {
        println!(
            "{}",
            json!({
                "users": run.users_done,
                "sessions_ended": run.sessions_ended,
                "tokens_revoked": run.tokens_revoked,
            })
        );
    } else {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        let users = i64::from(run.users_done);
        println!(
            "Signed out everyone in `{}`: {users} user{}, {} session{} ended, {} token{} revoked.",
            org.slug,
            plural(users),
            run.sessions_ended,
            plural(run.sessions_ended),
            run.tokens_revoked,
            plural(run.tokens_revoked),
        );
    }
    Ok(())
}
