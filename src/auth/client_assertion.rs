//! OAuth client authentication by a signed JWT (RFC 7523 §2.2, `private_key_jwt`): how an org's
//! IdP, as its SCIM client, proves who it is at `POST /oauth/token`.
//!
//! The assertion's `iss` and `sub` are the client id. Unverified, that id only selects the orgs
//! whose configured IdP registration has it (`orgs.idp_client_id`); keys come only from those
//! orgs' configured issuers, never from a URL the caller names. The org is the one whose keys
//! verify the signature; if two orgs' keys do (a copied registration), nobody gets a token.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    auth::{
        jwks::JwksCache,
        jwt::{self, JwtError, Rules},
    },
    db::models::Org,
};

/// The `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far ahead an assertion's `exp` may be: it is a one-shot credential.
pub const MAX_AHEAD: Duration = Duration::from_secs(5 * 60);
/// Clock skew tolerated on `exp` beyond [`MAX_AHEAD`].
const LEEWAY_SECS: i64 = 60;
/// Orgs tried for one client id: more means someone copies registrations; refused.
const MAX_CANDIDATES: i64 = 4;
/// Accepted JOSE `typ`s: RFC 7523bis' explicit type, plain `JWT`, or none (`""`).
const TYPES: &[&str] = &[
    "client-authentication+jwt",
    "application/client-authentication+jwt",
    "JWT",
    "",
];

/// A client whose assertion verified.
#[derive(Debug)]
pub struct Client {
    pub org: Org,
    pub client_id: String,
    /// The assertion's id: spend it (under `client_id`) with whatever it buys.
    pub jti: String,
    /// Until when the assertion could be accepted.
    pub remember_until: OffsetDateTime,
}

/// Why an assertion was refused. The caller is told only "client authentication failed"; the
/// reason is for the log, so the endpoint is no oracle for what the app can fetch.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion is not a JWT with iss = sub = a client id")]
    Malformed,
    #[error("no organisation has an IdP registration with this client id")]
    UnknownClient,
    #[error("{0}")]
    Refused(String),
    #[error("the signing keys of several organisations verify it")]
    Ambiguous,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Authenticates `assertion`, whose `aud` must name one of `audiences` (this token endpoint, or
/// the app as an issuer).
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    assertion: &str,
    audiences: &[&str],
    jwks: &JwksCache,
) -> Result<Client, AssertionError> {
    let claims = jwt::peek_claims(assertion).map_err(|_| AssertionError::Malformed)?;
    let claim = |name| claims.get(name).and_then(Value::as_str);
    let client_id = match (claim("iss"), claim("sub")) {
        (Some(iss), Some(sub)) if iss == sub && plain_text(sub) => sub.to_owned(),
        _ => return Err(AssertionError::Malformed),
    };
    let candidates = Org::find_by_idp_client_id(conn, &client_id, MAX_CANDIDATES + 1).await?;
    if candidates.is_empty() {
        return Err(AssertionError::UnknownClient);
    }
    if candidates.len() as i64 > MAX_CANDIDATES {
        tracing::warn!(client_id, "too many organisations share this IdP client id");
        return Err(AssertionError::Ambiguous);
    }

    let mut verified = Vec::new();
    let mut last_refusal = None;
    for org in candidates {
        let Some(keys_of) = org.idp_issuer.clone() else {
            continue;
        };
        let rules = Rules {
            types: TYPES,
            issuer: &client_id,
            keys_of: Some(&keys_of),
            audiences,
            subject: Some(&client_id),
            max_lifetime: None,
            require_exp: true,
        };
        match jwt::verify(assertion, &rules, jwks).await {
            Ok(jwt) => verified.push((org, jwt)),
            Err(e) => {
                if let JwtError::Key(cause) = &e {
                    tracing::warn!(org = %org.slug, error = %cause, "cannot check a client assertion's signature");
                }
                last_refusal = Some(e.to_string());
            }
        }
    }
    let (org, jwt) = match verified.len() {
        1 => verified.remove(0),
        0 => {
            return Err(AssertionError::Refused(
                last_refusal.unwrap_or_else(|| "no key verifies it".into()),
            ));
        }
        _ => {
            let orgs: Vec<_> = verified.iter().map(|(o, _)| o.slug.as_str()).collect();
            tracing::warn!(
                client_id,
                ?orgs,
                "several organisations' IdP keys verify one client assertion"
            );
            return Err(AssertionError::Ambiguous);
        }
    };

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let exp = jwt
        .claims
        .get("exp")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MAX);
    let ahead = i64::try_from(MAX_AHEAD.as_secs()).unwrap_or(300);
    if exp > now + ahead + LEEWAY_SECS {
        return Err(AssertionError::Refused(format!(
            "exp is more than {ahead} seconds ahead"
        )));
    }
    if !plain_text(&jwt.jti) {
        return Err(AssertionError::Refused("jti has control characters".into()));
    }
    Ok(Client {
        org,
        client_id,
        jti: jwt.jti,
        remember_until: jwt.expires_at,
    })
}

/// 1 to 255 characters, none a control character (PostgreSQL text refuses NUL).
fn plain_text(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= 255 && !value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_bounded_text() {
        assert!(plain_text("0oa1b2c3"));
        assert!(!plain_text(""));
        assert!(!plain_text("a\0b"));
        assert!(!plain_text(&"x".repeat(256)));
    }
}
