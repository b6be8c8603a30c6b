//! A revocation as the dashboard's feed and the audit log show it.

use crate::{
    db::models::{Revocation, RevocationSource},
    page::format_time,
};

/// One revocation in the feed.
pub struct FeedRow {
    pub at: String,
    pub email: String,
    pub source: String,
    pub actor: String,
    pub sessions_ended: i32,
}

impl FeedRow {
    pub fn new(revocation: &Revocation, email: Option<String>) -> FeedRow {
        FeedRow {
            at: format_time(&revocation.created_at),
            email: email.unwrap_or_else(|| "(deleted user)".into()),
            source: RevocationSource::parse(&revocation.source)
                .map_or(revocation.source.clone(), |s| s.label().to_owned()),
            actor: revocation.actor.clone(),
            sessions_ended: revocation.sessions_ended,
        }
    }
}
