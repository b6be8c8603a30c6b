//! How the dashboard shows a run of "sign out everyone in the org": its count and its state, in
//! words, for the page and for the progress it polls.

use crate::{db::models::OrgLogout, page::format_time};

/// The org's latest run, as the dashboard shows it.
pub struct RunView {
    pub running: bool,
    pub users_total: i32,
    pub users_done: i32,
    /// "3000 of 10000 users · 15000 sessions ended · 12 tokens revoked".
    pub summary: String,
    /// "Started by admin … at …", and how it ended.
    pub status: String,
    pub failed: bool,
}

impl RunView {
    pub fn new(run: &OrgLogout) -> Self {
        let running = run.is_running();
        let status = match (&run.finished_at, &run.failure) {
            _ if running => format!(
                "Signing out everyone: started by {} at {}.",
                run.actor,
                format_time(&run.started_at)
            ),
            (Some(at), None) => format!(
                "Everyone was signed out by {} at {} (the session that asked was kept).",
                run.actor,
                format_time(at)
            ),
            (_, Some(failure)) => format!(
                "The sign-out of everyone started by {} at {} stopped: {failure}. The users \
                 counted here are signed out; start it again to sign out the rest.",
                run.actor,
                format_time(&run.started_at)
            ),
            (None, None) => format!(
                "The sign-out of everyone started by {} at {} stopped (its instance went away). \
                 The users counted here are signed out; start it again to sign out the rest.",
                run.actor,
                format_time(&run.started_at)
            ),
        };
        RunView {
            running,
            users_total: run.users_total,
            users_done: run.users_done.min(run.users_total),
            summary: summary(run),
            status,
            failed: !running && (run.failure.is_some() || run.finished_at.is_none()),
        }
    }
}

pub(super) fn summary(run: &OrgLogout) -> String {
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    let total = i64::from(run.users_total);
    format!(
        "{} of {total} user{} · {} session{} ended · {} token{} revoked",
        run.users_done.min(run.users_total),
        plural(total),
        run.sessions_ended,
        plural(run.sessions_ended),
        run.tokens_revoked,
        plural(run.tokens_revoked),
    )
}
