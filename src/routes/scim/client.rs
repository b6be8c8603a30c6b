//! Who is calling SCIM: the org named by a SCIM token (long-lived, or an OAuth access token
//! from `/oauth/token`), never by the body. Each request counts against the org's rate limit.

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, web};
use futures_util::future::LocalBoxFuture;

use crate::{
    auth,
    db::{
        ids::OrgId,
        models::{Org, ScimToken},
    },
    priority::RevocationPool,
    rate_limit::{Limits, RateLimiter},
    scim::error::ScimError,
    secret_token::{self, Kind},
};

/// An authenticated SCIM client of one org.
#[derive(Clone, Debug)]
pub struct ScimClient {
    pub org: Org,
    /// For the audit log: the token's prefix, or `oauth:<client_id>`.
    pub actor: String,
}

impl ScimClient {
    pub fn org_id(&self) -> OrgId {
        self.org.id
    }
}

impl FromRequest for ScimClient {
    type Error = ScimError;
    type Future = LocalBoxFuture<'static, Result<Self, ScimError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let credential = auth::bearer(req).map(str::to_owned);
        let pool = req.app_data::<web::Data<RevocationPool>>().cloned();
        let limits = req.app_data::<web::Data<Limits>>().cloned();
        Box::pin(async move {
            let refused = || ScimError::unauthorized("unknown, expired or revoked SCIM token");
            let credential = credential.map_err(|e| ScimError::unauthorized(e.to_string()))?;
            let presented =
                secret_token::parse(Kind::ScimToken, &credential).ok_or_else(refused)?;
            let (pool, limits) = pool.zip(limits).ok_or_else(|| {
                ScimError::from(crate::error::AppError::Unexpected(anyhow::anyhow!(
                    "the app has no pool or limits"
                )))
            })?;
            let mut conn = pool.get().await?;
            let (token, org) = ScimToken::authenticate(&mut conn, &presented)
                .await?
                .ok_or_else(refused)?;
            if org.disabled_at.is_some() {
                return Err(ScimError::new(
                    StatusCode::FORBIDDEN,
                    None,
                    "this organisation is disabled",
                ));
            }
            admit(&limits.scim_per_org, org.id)?;
            let actor = match &token.client_id {
                Some(client) => format!("oauth:{client}"),
                None => token.prefix.clone(),
            };
            Ok(ScimClient { org, actor })
        })
    }
}

/// Counts a request of `org`, or refuses it with 429 and `Retry-After`.
pub fn admit(limiter: &RateLimiter, org: OrgId) -> Result<(), ScimError> {
    match limiter.reserve(&org.to_string()) {
        // Every request counts: the reservation is kept.
        Ok(_counted) => Ok(()),
        Err(wait) => {
            tracing::warn!(org_id = %org, "SCIM rate limit reached");
            Err(ScimError::too_many(wait.as_secs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{ResponseError as _, http::header};

    #[test]
    fn an_org_over_its_scim_limit_gets_429_with_retry_after() {
        let limiter = RateLimiter::new(2, std::time::Duration::from_secs(60));
        let (acme, globex) = (OrgId::new(), OrgId::new());
        assert!(admit(&limiter, acme).is_ok());
        assert!(admit(&limiter, acme).is_ok());

        let refused = admit(&limiter, acme).unwrap_err().error_response();

        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = refused
            .headers()
            .get(header::RETRY_AFTER)
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait));
        assert!(admit(&limiter, globex).is_ok(), "per org");
    }
}
