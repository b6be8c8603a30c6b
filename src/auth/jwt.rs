//! Verification of JWTs signed by an org's identity provider (Universal Logout requests, OIDC
//! logout tokens): asymmetric signatures only, keys from the issuer's JWKS, and every claim the
//! caller's rules ask for.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::auth::jwks::{JwksCache, JwksError};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Signature algorithms accepted: asymmetric only. `none` and HMAC never are (an HMAC keyed
/// with a public key is the classic forgery).
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What a JWT must satisfy.
#[derive(Clone, Debug)]
pub struct Rules<'a> {
    /// Accepted `typ` header values (compared without case); empty accepts any or none.
    pub types: &'a [&'a str],
    /// The `iss` required.
    pub issuer: &'a str,
    /// The issuer whose keys (OpenID discovery, JWKS) must have signed it, when it is not `iss`
    /// (an RFC 7523 client assertion's `iss` is the client id; its keys are the org's IdP's).
    pub keys_of: Option<&'a str>,
    /// Values one of which `aud` must be or contain.
    pub audiences: &'a [&'a str],
    /// The `sub` required, if any.
    pub subject: Option<&'a str>,
    /// Longest accepted `exp - iat`.
    pub max_lifetime: Option<Duration>,
    /// Whether `exp` must be present.
    pub require_exp: bool,
}

/// A JWT whose signature and claims passed.
#[derive(Clone, Debug)]
pub struct Verified {
    pub claims: Map<String, Value>,
    pub jti: String,
    pub expires_at: OffsetDateTime,
}

/// Why a JWT was refused.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the JWT's typ must be {expected}")]
    Type { expected: String },
    #[error("the JWT's signing algorithm is not accepted")]
    Algorithm,
    #[error("the JWT's header has crit: no extension is understood here")]
    Critical,
    #[error(transparent)]
    Key(#[from] JwksError),
    #[error("the JWT failed verification: {0}")]
    Invalid(String),
}

/// The claims of a JWT, unverified: only to pick which org's rules and keys apply.
pub fn peek_claims(token: &str) -> Result<Map<String, Value>, JwtError> {
    jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
        .map(|data| data.claims)
        .map_err(|_| JwtError::Malformed)
}

/// Verifies `token` against `rules` with the issuer's keys.
pub async fn verify(
    token: &str,
    rules: &Rules<'_>,
    jwks: &JwksCache,
) -> Result<Verified, JwtError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
    if !rules.types.is_empty() {
        let typ = header.typ.as_deref().unwrap_or_default();
        if !rules.types.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
            return Err(JwtError::Type {
                expected: rules.types[0].to_owned(),
            });
        }
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(JwtError::Algorithm);
    }
    // RFC 7515 §4.1.11: a JWS whose `crit` names an extension the recipient does not
    // understand must be refused, and this app understands none.
    if header.crit.is_some() {
        return Err(JwtError::Critical);
    }
    let key = jwks
        .key(
            rules.keys_of.unwrap_or(rules.issuer),
            header.kid.as_deref(),
            header.alg,
        )
        .await?;

    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_exp = rules.require_exp;
    validation.validate_nbf = true;
    validation.set_issuer(&[rules.issuer]);
    validation.set_audience(rules.audiences);
    validation.sub = rules.subject.map(str::to_owned);
    let mut required = vec!["iss", "aud"];
    if rules.require_exp {
        required.push("exp");
    }
    if rules.subject.is_some() {
        required.push("sub");
    }
    validation.set_required_spec_claims(&required);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| JwtError::Invalid(e.to_string()))?
        .claims;

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(60);
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| JwtError::Invalid("iat is required".into()))?;
    if iat > now + leeway {
        return Err(JwtError::Invalid("iat is in the future".into()));
    }
    let exp = claims.get("exp").and_then(Value::as_i64);
    if let (Some(max), Some(exp)) = (rules.max_lifetime, exp)
        && exp - iat > i64::try_from(max.as_secs()).unwrap_or(i64::MAX)
    {
        return Err(JwtError::Invalid(format!(
            "the JWT lives longer than {} seconds",
            max.as_secs()
        )));
    }
    let jti = match claims.get("jti").and_then(Value::as_str) {
        Some(jti) if !jti.is_empty() && jti.len() <= 255 => jti.to_owned(),
        _ => return Err(JwtError::Invalid("jti is required".into())),
    };
    // Remembered until the JWT could no longer be accepted (default: a lifetime after iat).
    let until = exp.unwrap_or(iat + 600) + leeway;
    let expires_at = OffsetDateTime::from_unix_timestamp(until)
        .map_err(|_| JwtError::Invalid("exp is out of range".into()))?;
    Ok(Verified {
        claims,
        jti,
        expires_at,
    })
}
