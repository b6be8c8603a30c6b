//! Who is calling Universal Logout: an org API key, or a JWT signed by the org's IdP. Either way
//! the caller is one org, and the request can touch only that org's users.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use serde_json::Value;

use crate::{
    auth::{
        jwks::JwksCache,
        jwt::{self, JwtError, Rules},
    },
    db::{
        ids::UserId,
        models::{Org, OrgApiKey, SeenJti},
    },
    error::AppError,
    revocation::SingleUse,
    secret_token::{self, Kind, Presented},
};

/// The JOSE `typ` of a Universal Logout JWT (with and without the `application/` prefix).
pub const JWT_TYPES: &[&str] = &[
    "global-token-revocation+jwt",
    "application/global-token-revocation+jwt",
];
/// The longest lifetime (`exp - iat`) accepted for a Universal Logout JWT.
pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(600);

/// An authenticated caller.
#[derive(Debug)]
pub struct Caller {
    pub org: Org,
    /// The org's user the request names by email, when it was read with the API key
    /// (`Some(None)`: the org has no such user); `None` when it was not read.
    pub named_by_email: Option<Option<UserId>>,
    /// For the audit log: the key's prefix, or the JWT's issuer and id.
    pub actor: String,
    /// The JWT's id, to be spent with the revocation.
    pub jwt: Option<SpentJwt>,
    /// The API key the caller presented, when it was one.
    pub api_key: Option<Presented>,
}

/// A verified JWT's single-use id.
#[derive(Debug)]
pub struct SpentJwt {
    pub issuer: String,
    pub jti: String,
    pub remember_until: time::OffsetDateTime,
}

impl Caller {
    /// The JWT id as the revocation records it.
    pub fn single_use(&self) -> Option<SingleUse<'_>> {
        self.jwt.as_ref().map(|jwt| SingleUse {
            issuer: &jwt.issuer,
            jti: &jwt.jti,
            remember_until: jwt.remember_until,
        })
    }
}

fn unauthorized(message: impl Into<String>) -> AppError {
    AppError::Unauthorized(message.into())
}

/// Authenticates a credential: an org API key, else a JWT from an org's IdP. `audience` is this
/// endpoint's public URL, which a JWT's `aud` must name. `email`, the user the request names
/// (if by email), is read with an API key in the same statement.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    credential: &str,
    jwks: &JwksCache,
    audience: &str,
    email: Option<&str>,
) -> Result<Caller, AppError> {
    if secret_token::looks_like(Kind::OrgApiKey, credential) {
        let presented = secret_token::parse(Kind::OrgApiKey, credential)
            .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
        let found = OrgApiKey::authenticate(conn, &presented, email)
            .await?
            .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
        return Ok(Caller {
            org: found.org,
            named_by_email: email.map(|_| found.user),
            actor: format!("api key {}", found.key.prefix),
            jwt: None,
            api_key: Some(presented),
        });
    }

    // A JWT names its issuer and (as `sub`) the app's client id there: together, one org.
    let claims = jwt::peek_claims(credential)
        .map_err(|_| unauthorized("the credential is neither an API key nor a JWT"))?;
    let claim = |name| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    let (issuer, client_id) = (claim("iss"), claim("sub"));
    let org = Org::find_by_idp(conn, issuer, client_id)
        .await?
        .ok_or_else(|| unauthorized("no organisation trusts this JWT's issuer and subject"))?;
    let rules = Rules {
        types: JWT_TYPES,
        issuer,
        keys_of: None,
        audiences: &[audience],
        subject: Some(client_id),
        max_lifetime: Some(MAX_JWT_LIFETIME),
        require_exp: true,
    };
    let verified = jwt::verify(credential, &rules, jwks).await.map_err(|e| {
        if let JwtError::Key(cause) = &e {
            tracing::warn!(org = %org.slug, error = %cause, "cannot check a Universal Logout JWT's signature");
        }
        unauthorized(e.to_string())
    })?;
    if SeenJti::exists(conn, issuer, &verified.jti).await? {
        return Err(unauthorized("this JWT was already used (jti)"));
    }
    Ok(Caller {
        actor: format!("jwt {issuer} jti={}", verified.jti),
        jwt: Some(SpentJwt {
            issuer: issuer.to_owned(),
            jti: verified.jti,
            remember_until: verified.expires_at,
        }),
        org,
        named_by_email: None,
        api_key: None,
    })
}
