//! `POST /backchannel-logout`: OpenID Connect Back-Channel Logout 1.0. The org's IdP posts a
//! signed logout token when a user signs out there; with a `sid` that one IdP session's sessions
//! end, with only a `sub` every session of the user does. Through the one revocation path,
//! source `backchannel`; the token's `jti` is spent with the revocation.

use actix_web::{HttpResponse, http::header, web};
use serde::Deserialize;
use serde_json::Value;
use tracing_actix_web::RequestId;

use crate::{
    auth::{
        jwks::JwksCache,
        jwt::{self, Rules},
    },
    db::models::{Org, RevocationSource, SeenJti, User},
    error::{ApiError, AppError},
    metrics::Metrics,
    priority::RevocationPool,
    revocation::{self, Requester, RevokeError, Sessions, SingleUse},
};

/// The event a logout token must carry.
/// Where identity providers post logout tokens.
pub const PATH: &str = "/backchannel-logout";

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Accepted `typ` headers: the spec's `logout+jwt`, the generic `JWT`, or none.
const TYPES: &[&str] = &["logout+jwt", "application/logout+jwt", "JWT", ""];
/// Largest form body accepted.
const FORM_LIMIT: usize = 16 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .app_data(
                web::FormConfig::default()
                    .limit(FORM_LIMIT)
                    .error_handler(|e, _| {
                        invalid(&format!("the body must be a form with a logout_token: {e}")).into()
                    }),
            )
            .route(web::post().to(backchannel_logout)),
    );
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

/// Every refusal of a logout token: 400 `invalid_request`, as the spec asks.
fn invalid(description: &str) -> ApiError {
    ApiError(AppError::BadRequest(format!(
        "invalid logout token: {description}"
    )))
}

#[tracing::instrument(skip_all, fields(org = tracing::field::Empty))]
async fn backchannel_logout(
    form: web::Form<LogoutForm>,
    pool: web::Data<RevocationPool>,
    jwks: web::Data<JwksCache>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let token = form.logout_token.trim();
    if token.is_empty() {
        return Err(invalid("logout_token is empty"));
    }
    // The token names its issuer and audience (the app's client id there): together, one org.
    let claims = jwt::peek_claims(token).map_err(|_| invalid("not a JWT"))?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let org = {
        let mut conn = pool.get().await?;
        Org::find_by_issuer_and_audience(&mut conn, &issuer, &audiences).await?
    }
    .ok_or_else(|| invalid("no organisation trusts its issuer and audience"))?;
    tracing::Span::current().record("org", org.slug.as_str());
    let client_id = org.idp_client_id.clone().unwrap_or_default();

    let rules = Rules {
        types: TYPES,
        issuer: &issuer,
        keys_of: None,
        audiences: &[&client_id],
        subject: None,
        max_lifetime: None,
        require_exp: true,
    };
    let verified = jwt::verify(token, &rules, &jwks)
        .await
        .map_err(|e| invalid(&e.to_string()))?;
    let claims = &verified.claims;
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|events| events.get(BACKCHANNEL_EVENT).is_some_and(Value::is_object));
    if !has_event {
        return Err(invalid("events must contain the back-channel logout event"));
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token must not contain a nonce"));
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Err(invalid("it names neither a sub nor a sid"));
    }

    let actor = format!("backchannel {issuer} jti={}", verified.jti);
    let request_id = request_id.to_string();
    let by = Requester::new(RevocationSource::Backchannel, &actor, &request_id).spending(Some(
        SingleUse {
            issuer: &issuer,
            jti: &verified.jti,
            remember_until: verified.expires_at,
        },
    ));
    // The logout token is verified: pages give way until the revocation is written.
    let _pages_held = pool.hold_pages();
    let mut conn = pool.get().await?;
    let result = match (sid, sub) {
        (Some(sid), _) => {
            let revoke =
                revocation::revoke_sessions(&mut conn, org.id, Sessions::OfIdpSession(sid), by);
            let ended = metrics.timed(by.source, revoke).await;
            ended.map(|ended| ended.iter().map(|o| o.sessions_ended).sum::<usize>())
        }
        (None, Some(sub)) => match User::find_by_oidc(&mut conn, org.id, &issuer, sub).await? {
            Some(user) => {
                let revoke = revocation::revoke_user(&mut conn, org.id, user.id, by);
                metrics
                    .timed(by.source, revoke)
                    .await
                    .map(|o| o.sessions_ended)
            }
            // Nobody to sign out (already out, or never signed in here); the token is spent all the same.
            None => match SeenJti::record(&mut conn, &issuer, &verified.jti, verified.expires_at)
                .await?
            {
                true => Ok(0),
                false => Err(RevokeError::Replayed),
            },
        },
        (None, None) => unreachable!("checked above"),
    };
    let ended = result.map_err(|e| match e {
        RevokeError::Replayed => invalid("this logout token was already used (jti)"),
        RevokeError::Database(e) => ApiError(e.into()),
    })?;
    tracing::info!(org = %org.slug, sessions_ended = ended, "back-channel logout");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
