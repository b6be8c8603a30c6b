//! What a verified SET does, always through [`crate::revocation`]: the SET's `jti` is spent in
//! the same transaction (or statement) as its effect, so a replay has no second effect and a
//! failed effect leaves the SET acceptable again when the transmitter retries.

use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use super::{
    event::{Signal, Target},
    set::Set,
};
use crate::{
    db::{
        ids::AccountState,
        models::{Org, RevocationSource, SeenJti, SsfStream, StreamStatus, User},
    },
    error::AppError,
    metrics::Metrics,
    revocation::{self, EmailChange, Requester, RevokeError, Sessions, SingleUse},
    routes::global_token_revocation::subject::{self, Subject},
};

/// What a SET did, for the log and the metrics (a closed set of labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The effect was committed.
    Applied,
    /// Nobody in the org matches the subject: nothing done (the transmitter is not told).
    UnknownUser,
    /// The effect would change nothing, or cannot be made (an email another user has).
    NoChange,
    /// Not an event the app acts on.
    Ignored,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::UnknownUser => "unknown_user",
            Self::NoChange => "no_change",
            Self::Ignored => "ignored",
        }
    }
}

/// Why an effect could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error("this SET was already received (jti)")]
    Replayed,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<RevokeError> for EffectError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::Replayed => Self::Replayed,
            RevokeError::Database(e) => Self::App(e.into()),
        }
    }
}

impl From<diesel::result::Error> for EffectError {
    fn from(e: diesel::result::Error) -> Self {
        Self::App(e.into())
    }
}

/// Everything an effect needs to know about where the SET came from.
pub struct Context<'a> {
    pub org: &'a Org,
    pub stream: &'a SsfStream,
    pub request_id: &'a str,
    pub metrics: &'a Metrics,
    pub counts: &'a super::counts::EventCounts,
}

/// Makes `signal`'s effect on `target` (required when the signal names a user).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    cx: &Context<'_>,
    set: &Set,
    signal: &Signal,
    target: Option<&Target>,
) -> Result<Outcome, EffectError> {
    let source = match signal {
        Signal::SessionRevoked | Signal::CredentialChange => RevocationSource::Caep,
        _ => RevocationSource::Risc,
    };
    let actor = format!("ssf {} jti={}", set.issuer, set.jti);
    let once = SingleUse {
        issuer: &set.issuer,
        jti: &set.jti,
        remember_until: set.remember_until,
    };
    let by = Requester::new(source, &actor, cx.request_id).spending(Some(once));
    let org = cx.org.id;

    let target = match (signal.names_a_user(), target) {
        (true, Some(target)) => target,
        (true, None) => return Err(EffectError::Invalid("the SET names no subject".into())),
        (false, _) => return stream_event(conn, cx.stream, signal, once).await,
    };
    // A session subject: exactly that IdP session's sessions end.
    if let (Signal::SessionRevoked, Some(sid)) = (signal, &target.session) {
        let revoke = revocation::revoke_sessions(conn, org, Sessions::OfIdpSession(sid), by);
        cx.metrics.timed(source, revoke).await?;
        return Ok(Outcome::Applied);
    }
    let Some(subject) = &target.user else {
        return Err(EffectError::Invalid(
            "this event needs a user subject".into(),
        ));
    };
    let user = match subject::resolve(conn, cx.org, subject).await {
        Ok(user) => Some(user),
        Err(AppError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(user) = user else {
        // CAEP's own example names the IdP session as a bare opaque subject.
        if let (Signal::SessionRevoked, Subject::Opaque(sid)) = (signal, subject) {
            let revoke = revocation::revoke_sessions(conn, org, Sessions::OfIdpSession(sid), by);
            let ended = cx.metrics.timed(source, revoke).await?;
            return Ok(if ended.is_empty() {
                Outcome::UnknownUser
            } else {
                Outcome::Applied
            });
        }
        spend(conn, once).await?;
        return Ok(Outcome::UnknownUser);
    };
    match signal {
        Signal::SessionRevoked => {
            let revoke = revocation::revoke_sessions(conn, org, Sessions::OfUser(user.id), by);
            cx.metrics.timed(source, revoke).await?;
            Ok(Outcome::Applied)
        }
        Signal::CredentialChange => {
            let revoke = revocation::revoke_user(conn, org, user.id, by);
            cx.metrics.timed(source, revoke).await?;
            Ok(Outcome::Applied)
        }
        Signal::AccountDisabled | Signal::AccountEnabled | Signal::AccountPurged => {
            let to = match signal {
                Signal::AccountDisabled => AccountState::Suspended,
                Signal::AccountEnabled => AccountState::Active,
                _ => AccountState::Deleted,
            };
            let change = revocation::set_state(conn, org, user.id, to, by);
            let change = cx.metrics.timed(source, change).await?;
            Ok(match change {
                Some(change) if change.changed => Outcome::Applied,
                Some(_) => Outcome::NoChange,
                None => Outcome::UnknownUser,
            })
        }
        Signal::IdentifierChanged { new_value } => {
            identifier_changed(conn, cx, &user, target, new_value.as_deref(), by).await
        }
        Signal::Verification { .. } | Signal::StreamUpdated { .. } | Signal::Other => {
            unreachable!("no user is named")
        }
    }
}

/// RISC `identifier-changed`: only an email subject's new email is followed.
async fn identifier_changed(
    conn: &mut AsyncPgConnection,
    cx: &Context<'_>,
    user: &User,
    target: &Target,
    new_value: Option<&str>,
    by: Requester<'_>,
) -> Result<Outcome, EffectError> {
    let new_email = match new_value {
        Some(v) if is_email(v) => v,
        Some(_) => {
            return Err(EffectError::Invalid(
                "identifier-changed: new-value must be an email address".into(),
            ));
        }
        None => {
            return Err(EffectError::Invalid(
                "identifier-changed: the event needs a new-value".into(),
            ));
        }
    };
    if target.email.is_none() {
        // Another identifier changed (a phone number, a subject at the IdP): nothing to follow.
        spend(conn, by.single_use.expect("carried")).await?;
        return Ok(Outcome::Ignored);
    }
    let changed = revocation::change_email(conn, cx.org.id, user.id, new_email, by).await?;
    Ok(match changed {
        EmailChange::Changed { .. } => Outcome::Applied,
        EmailChange::Unchanged | EmailChange::Taken => Outcome::NoChange,
        EmailChange::NoUser => Outcome::UnknownUser,
    })
}

/// Events about the stream itself (and any the app does not act on): the `jti` is spent with
/// what they record.
async fn stream_event(
    conn: &mut AsyncPgConnection,
    stream: &SsfStream,
    signal: &Signal,
    once: SingleUse<'_>,
) -> Result<Outcome, EffectError> {
    conn.transaction::<_, EffectError, _>(async |conn| {
        spend(conn, once).await?;
        match signal {
            Signal::Verification { state } => {
                let state = state
                    .as_deref()
                    .filter(|s| s.len() <= 255 && !s.chars().any(char::is_control));
                SsfStream::record_verified(conn, stream.id, state).await?;
                Ok(Outcome::Applied)
            }
            Signal::StreamUpdated { status } => {
                match status.as_deref().and_then(StreamStatus::parse) {
                    Some(status) => {
                        SsfStream::set_status(conn, stream.id, status).await?;
                        Ok(Outcome::Applied)
                    }
                    None => Ok(Outcome::Ignored),
                }
            }
            _ => Ok(Outcome::Ignored),
        }
    })
    .await
}

/// Spends a SET's `jti` on its own (no effect): a replay is refused.
async fn spend(conn: &mut AsyncPgConnection, once: SingleUse<'_>) -> Result<(), EffectError> {
    match SeenJti::record(conn, once.issuer, once.jti, once.remember_until).await? {
        true => Ok(()),
        false => Err(EffectError::Replayed),
    }
}

/// An email address as the users table holds them: 3 to 254 characters with an `@` inside, no
/// control characters or spaces.
fn is_email(value: &str) -> bool {
    let length = value.chars().count();
    (3..=254).contains(&length)
        && value
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !value.chars().any(|c| c.is_control() || c.is_whitespace())
}
