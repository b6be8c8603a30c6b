use actix_session::Session;
use actix_web::{HttpResponse, web};
use tracing_actix_web::RequestId;

use crate::{
    auth::{CurrentUser, IDP_HINT_COOKIE, sso::Sso},
    config::PublicUrl,
    db::{
        Pool,
        models::{Org, RevocationSource},
    },
    error::AppError,
    metrics::Metrics,
    page,
    revocation::{self, Requester, Sessions},
    session_store::{META_KEY, SessionMeta},
    signed_cookie,
};

/// Where the IdP sends the browser back after signing out there (registered at the IdP).
pub const POST_LOGOUT_PATH: &str = "/login?reason=signed_out";

/// `POST /logout`: ends this session through the one revocation path (audited, and announced to
/// the user's other tabs) and drops the cookie. A session signed in through SSO then goes on to
/// the IdP's `end_session_endpoint` (RP-initiated logout), which signs the person out there too
/// and sends them back; without one, the sign-in page says they may still be signed in there.
#[tracing::instrument(skip_all, fields(user = user.as_ref().map(|u| u.id.to_string())))]
#[allow(clippy::too_many_arguments)] // the extractors of one handler
pub async fn logout(
    user: Option<CurrentUser>,
    session: Session,
    pool: web::Data<Pool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
    sso: web::Data<Sso>,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, AppError> {
    let id_token = session
        .get::<SessionMeta>(META_KEY)
        .ok()
        .flatten()
        .and_then(|meta| meta.idp)
        .map(|idp| idp.id_token);
    let mut next = POST_LOGOUT_PATH.to_owned();
    if let Some(user) = user {
        let request_id = request_id.to_string();
        let mut conn = pool.get().await?;
        let by = Requester::new(RevocationSource::SelfService, "user", &request_id);
        let revoke =
            revocation::revoke_sessions(&mut conn, user.org_id, Sessions::One(user.session_id), by);
        metrics.timed(by.source, revoke).await?;
        if let Some(id_token) = id_token {
            let org = Org::find(&mut conn, user.org_id).await?;
            drop(conn); // not held across the call to the IdP
            next = match org.as_ref() {
                Some(org) => end_session_url(&sso, org, &id_token, &public_url).await,
                None => None,
            }
            .unwrap_or_else(|| "/login?reason=signed_out_sso".to_owned());
        }
    }
    session.purge();
    let mut response = page::see_other(&next);
    response
        .add_cookie(&signed_cookie::removal(IDP_HINT_COOKIE, "/"))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(response)
}

/// The IdP's sign-out URL for this session, if the org's IdP has an `end_session_endpoint`.
async fn end_session_url(
    sso: &Sso,
    org: &Org,
    id_token: &str,
    public_url: &PublicUrl,
) -> Option<String> {
    let (issuer, client_id) = (org.idp_issuer.as_deref()?, org.idp_client_id.as_deref()?);
    let mut url = sso.end_session_endpoint(issuer).await?;
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("client_id", client_id)
        .append_pair(
            "post_logout_redirect_uri",
            &public_url.join(POST_LOGOUT_PATH),
        );
    Some(url.to_string())
}
