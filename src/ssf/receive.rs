//! One SET received, by push or poll: verified for its stream, read, made to take effect, and
//! counted. What the caller answers (HTTP status, poll `ack` or `setErrs`) is its own business.

use diesel_async::AsyncPgConnection;

use super::{
    effect::{self, Context, EffectError, Outcome},
    event::{self, Signal},
    set::{self, Code, Expect, SetError},
};
use crate::{auth::jwks::JwksCache, error::AppError};

/// Why a SET did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// The SET is bad and will stay bad: tell the transmitter (RFC 8935/8936 code).
    #[error("{1}")]
    Refused(Code, String),
    /// The SET's `jti` was spent already: its effect happened once.
    #[error("this SET was already received (jti)")]
    Replayed,
    /// Nothing was changed, and the same SET may succeed later (keys or database unavailable).
    #[error("{0}")]
    Retry(String),
}

/// Verifies `token` for `cx`'s stream and makes its effect.
pub async fn process(
    conn: &mut AsyncPgConnection,
    cx: &Context<'_>,
    jwks: &JwksCache,
    token: &str,
) -> Result<Outcome, Rejected> {
    let stream = cx.stream;
    let expect = Expect {
        issuer: &stream.issuer,
        audience: &stream.audience,
        jwks_uri: &stream.jwks_uri,
    };
    let set = set::verify(token, expect, jwks).await.map_err(|e| match e {
        SetError::Refused(code, why) => Rejected::Refused(code, why),
        unreachable @ SetError::KeysUnreachable => {
            tracing::warn!(org = %cx.org.slug, jwks_uri = %stream.jwks_uri, "cannot fetch the transmitter's keys");
            Rejected::Retry(unreachable.to_string())
        }
    })?;
    let signal = Signal::of(&set.event_type, &set.event);
    let target = if signal.names_a_user() {
        let target = event::target(set.sub_id.as_ref(), &set.event)
            .map_err(|why| Rejected::Refused(Code::InvalidRequest, why))?;
        Some(target)
    } else {
        None
    };
    let outcome = effect::apply(conn, cx, &set, &signal, target.as_ref())
        .await
        .map_err(|e| match e {
            EffectError::Replayed => Rejected::Replayed,
            EffectError::Invalid(why) => Rejected::Refused(Code::InvalidRequest, why),
            EffectError::App(AppError::BadRequest(why)) => {
                Rejected::Refused(Code::InvalidRequest, why)
            }
            EffectError::App(e) => {
                tracing::error!(error = %e, "a Shared Signals event could not take effect");
                Rejected::Retry(
                    "the event could not take effect; nothing was changed, try again".into(),
                )
            }
        })?;
    cx.metrics.ssf_event(signal.label(), outcome.label());
    cx.counts.add(stream.id);
    tracing::info!(
        org = %cx.org.slug,
        event = signal.label(),
        event_type = %crate::telemetry::clip(&set.event_type),
        outcome = outcome.label(),
        "Shared Signals event"
    );
    Ok(outcome)
}
