use actix_session::Session;
use actix_web::{HttpResponse, web};
use tracing_actix_web::RequestId;

use crate::{
    auth::CurrentUser,
    db::{Pool, models::RevocationSource},
    error::AppError,
    metrics::Metrics,
    page,
    revocation::{self, Requester, Sessions},
};

/// `POST /logout`: ends this session through the one revocation path (audited, and announced to
/// the user's other tabs), then drops the cookie.
#[tracing::instrument(skip_all, fields(user = user.as_ref().map(|u| u.id.to_string())))]
pub async fn logout(
    user: Option<CurrentUser>,
    session: Session,
    pool: web::Data<Pool>,
    metrics: web::Data<Metrics>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    if let Some(user) = user {
        let request_id = request_id.to_string();
        let mut conn = pool.get().await?;
        let by = Requester::new(RevocationSource::SelfService, "user", &request_id);
        let revoke =
            revocation::revoke_sessions(&mut conn, user.org_id, Sessions::One(user.session_id), by);
        metrics.timed(by.source, revoke).await?;
    }
    session.purge();
    Ok(page::see_other("/login?reason=signed_out"))
}
