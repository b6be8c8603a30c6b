//! Security Event Tokens (RFC 8417) as a Shared Signals receiver accepts them: a JWS signed by a
//! key at the stream's `jwks_uri`, `typ` `secevent+jwt`, the stream's `iss` and `aud`, an `iat`
//! not in the future nor too old, a `jti`, and exactly one event. Every refusal carries the
//! RFC 8935 error code the push endpoint answers with.

use std::time::Duration;

use jsonwebtoken::{Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::auth::{
    jwks::{JwksCache, JwksError},
    jwt::{ALGORITHMS, LEEWAY},
};

/// Accepted JOSE `typ`s.
pub const TYPES: &[&str] = &["secevent+jwt", "application/secevent+jwt"];
/// The oldest SET accepted (by `iat`); its `jti` is remembered this long, so no replay outlives
/// it. A transmitter that retries (or queues for polling) longer than this loses the event.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A number above this is a time in milliseconds (Okta's), not seconds: in seconds it is the
/// year 5138.
const MILLISECONDS_ABOVE: i64 = 100_000_000_000;

/// An RFC 8935 error code (§2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidKey,
    InvalidIssuer,
    InvalidAudience,
    AuthenticationFailed,
    AccessDenied,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidKey => "invalid_key",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::AuthenticationFailed => "authentication_failed",
            Self::AccessDenied => "access_denied",
        }
    }
}

/// Why a SET was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{1}")]
    Refused(Code, String),
    /// The transmitter's keys cannot be fetched now: the transmitter should retry.
    #[error("the transmitter's signing keys cannot be fetched right now")]
    KeysUnreachable,
}

fn refused(code: Code, why: impl Into<String>) -> SetError {
    SetError::Refused(code, why.into())
}

fn invalid(why: impl Into<String>) -> SetError {
    refused(Code::InvalidRequest, why)
}

/// What a SET must be for one stream.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub jwks_uri: &'a str,
}

/// A verified SET.
#[derive(Clone, Debug)]
pub struct Set {
    pub issuer: String,
    pub jti: String,
    pub issued_at: OffsetDateTime,
    /// Until when its `jti` must be remembered.
    pub remember_until: OffsetDateTime,
    /// The one event's type URI and its members.
    pub event_type: String,
    pub event: Map<String, Value>,
    /// The top-level subject (`sub_id`), if any.
    pub sub_id: Option<Map<String, Value>>,
}

/// A time claim in seconds, or in milliseconds when it is that large.
pub fn seconds(value: &Value) -> Option<i64> {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        _ => return None,
    };
    Some(if n > MILLISECONDS_ABOVE { n / 1000 } else { n })
}

/// Verifies `token` for the stream `expect` describes.
pub async fn verify(token: &str, expect: Expect<'_>, jwks: &JwksCache) -> Result<Set, SetError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| invalid("the body is not a signed JWT"))?;
    let typ = header.typ.as_deref().unwrap_or_default();
    if !TYPES.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
        return Err(invalid("the SET's typ must be secevent+jwt"));
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refused(
            Code::InvalidKey,
            "the SET's signing algorithm is not accepted (asymmetric algorithms only)",
        ));
    }
    if header.crit.is_some() {
        return Err(invalid(
            "the SET's header has crit: no extension is understood here",
        ));
    }
    let key = jwks
        .key_at(expect.jwks_uri, header.kid.as_deref(), header.alg)
        .await
        .map_err(|e| match e {
            JwksError::Unreachable => SetError::KeysUnreachable,
            JwksError::UnknownKey { .. } => refused(
                Code::InvalidKey,
                "the transmitter publishes no key with the SET's kid for its alg",
            ),
        })?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => refused(
                Code::AuthenticationFailed,
                "the SET's signature does not verify",
            ),
            _ => invalid(format!("the SET cannot be read: {e}")),
        })?
        .claims;
    check_claims(claims, expect, OffsetDateTime::now_utc().unix_timestamp())
}

/// The claims' checks, at `now` (Unix seconds).
fn check_claims(
    mut claims: Map<String, Value>,
    expect: Expect<'_>,
    now: i64,
) -> Result<Set, SetError> {
    let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(60);
    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) if same_url(iss, expect.issuer) => iss.clone(),
        Some(Value::String(_)) => {
            return Err(refused(
                Code::InvalidIssuer,
                "the SET's iss is not the stream's transmitter",
            ));
        }
        _ => return Err(invalid("the SET has no iss")),
    };
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expect.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
        _ => return Err(invalid("the SET has no aud")),
    };
    if !audience_ok {
        return Err(refused(
            Code::InvalidAudience,
            "the SET's aud is not the stream's audience",
        ));
    }
    let iat = claims
        .get("iat")
        .and_then(seconds)
        .ok_or_else(|| invalid("the SET has no numeric iat"))?;
    if iat > now + leeway {
        return Err(invalid("the SET's iat is in the future"));
    }
    let max_age = i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX);
    if iat < now - max_age {
        return Err(invalid(format!(
            "the SET is older than {} days",
            MAX_AGE.as_secs() / 86_400
        )));
    }
    if let Some(exp) = claims.get("exp") {
        match seconds(exp) {
            Some(exp) if exp + leeway >= now => {}
            Some(_) => return Err(invalid("the SET has expired")),
            None => return Err(invalid("the SET's exp must be a number")),
        }
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if plain_text(jti) => jti.clone(),
        _ => return Err(invalid("the SET needs a jti of 1 to 255 characters")),
    };
    let sub_id = match claims.remove("sub_id") {
        None => None,
        Some(Value::Object(sub_id)) => Some(sub_id),
        Some(_) => return Err(invalid("sub_id must be an object")),
    };
    let Some(Value::Object(events)) = claims.remove("events") else {
        return Err(invalid("the SET has no events object"));
    };
    if events.len() != 1 {
        return Err(invalid("a SET must carry exactly one event"));
    }
    let (event_type, event) = events.into_iter().next().expect("one event");
    let Value::Object(event) = event else {
        return Err(invalid("the event must be an object"));
    };
    let time =
        |s: i64| OffsetDateTime::from_unix_timestamp(s).map_err(|_| invalid("iat is out of range"));
    Ok(Set {
        issuer,
        jti,
        issued_at: time(iat)?,
        remember_until: time(iat.max(now) + max_age + leeway)?,
        event_type,
        event,
        sub_id,
    })
}

/// Whether two issuer URLs are the same, a trailing slash aside.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// 1 to 255 characters, none a control character (PostgreSQL text refuses NUL).
fn plain_text(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= 255 && !value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const EXPECT: Expect<'static> = Expect {
        issuer: "https://tx.example",
        audience: "https://app.example/ssf",
        jwks_uri: "https://tx.example/jwks",
    };
    const NOW: i64 = 1_800_000_000;

    fn claims(change: impl FnOnce(&mut Value)) -> Result<Set, String> {
        let mut claims = json!({
            "iss": "https://tx.example/", "aud": ["x", "https://app.example/ssf"],
            "iat": NOW, "jti": "j1",
            "events": { "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {} },
        });
        change(&mut claims);
        let Value::Object(map) = claims else {
            unreachable!()
        };
        check_claims(map, EXPECT, NOW).map_err(|e| match e {
            SetError::Refused(code, why) => format!("{}: {why}", code.as_str()),
            SetError::KeysUnreachable => "unreachable".into(),
        })
    }

    #[test]
    fn a_well_formed_set_passes_with_one_event() {
        let set = claims(|_| {}).unwrap();
        assert_eq!(set.jti, "j1");
        assert!(set.event_type.ends_with("session-revoked"));
        assert_eq!(set.issued_at.unix_timestamp(), NOW);
    }

    #[test]
    fn times_in_milliseconds_are_read_as_okta_sends_them() {
        let set = claims(|c| c["iat"] = json!(NOW * 1000 + 123)).unwrap();
        assert_eq!(set.issued_at.unix_timestamp(), NOW);
    }

    type Change = Box<dyn FnOnce(&mut Value)>;

    #[test]
    fn each_bad_claim_gets_its_rfc_8935_code() {
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|c| c["iss"] = json!("https://evil.example")),
                "invalid_issuer",
            ),
            (
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("iss");
                }),
                "invalid_request: the SET has no iss",
            ),
            (
                Box::new(|c| c["aud"] = json!("https://other.example")),
                "invalid_audience",
            ),
            (
                Box::new(|c| c["aud"] = json!(7)),
                "invalid_request: the SET has no aud",
            ),
            (
                Box::new(|c| c["iat"] = json!(NOW + 3600)),
                "iat is in the future",
            ),
            (
                Box::new(|c| c["iat"] = json!(NOW - 8 * 86_400)),
                "older than 7 days",
            ),
            (Box::new(|c| c["iat"] = json!("now")), "no numeric iat"),
            (Box::new(|c| c["exp"] = json!(NOW - 3600)), "expired"),
            (Box::new(|c| c["jti"] = json!("")), "jti"),
            (Box::new(|c| c["jti"] = json!("a\u{0}b")), "jti"),
            (Box::new(|c| c["jti"] = json!("x".repeat(256))), "jti"),
            (Box::new(|c| c["events"] = json!({})), "exactly one event"),
            (
                Box::new(|c| c["events"] = json!({"a": {}, "b": {}})),
                "exactly one event",
            ),
            (Box::new(|c| c["events"] = json!([])), "no events object"),
            (
                Box::new(|c| c["events"] = json!({"a": 1})),
                "must be an object",
            ),
            (
                Box::new(|c| c["sub_id"] = json!("alice")),
                "sub_id must be an object",
            ),
        ];
        for (change, expected) in cases {
            let error = claims(change).expect_err(expected);
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
