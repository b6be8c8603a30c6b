//! The org's Shared Signals stream on the Keys & identity provider page: the transmitter, how
//! SETs arrive, the stream's status as the transmitter tells it now, verification, the events
//! received and the last error; forms to point the org at a transmitter (or change how it
//! delivers), ask for a verification, or stop. `GET /admin/ssf` leads to that card.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    auth::{AdminUser, idp_http::IdpHttp},
    config::PublicUrl,
    db::{
        Pool,
        ids::OrgId,
        models::{Delivery, Org, SsfStream},
    },
    error::AppError,
    flash::{self, Flash},
    secret_box::SecretBox,
    ssf::manage::{self, Setup},
};

/// Where the forms post.
pub const PATH: &str = "/admin/ssf";
/// Where the card is.
pub const CARD: &str = "/admin/keys#ssf";

/// What the Keys page shows of the org's stream.
pub struct SsfCard {
    pub stream: Option<SsfStream>,
    /// Where pushed SETs arrive.
    pub endpoint: String,
    /// The transmitter's reason for the status, when it gave one.
    pub reason: Option<String>,
    /// The transmitter could not tell the status now: the one shown is the last known.
    pub status_unknown: bool,
}

impl SsfCard {
    /// Whether the org's events are polled (the form's choice as it stands).
    pub fn polled(&self) -> bool {
        self.stream
            .as_ref()
            .is_some_and(|s| s.delivery == Delivery::Poll)
    }

    /// The org's stream, its status read from the transmitter (a short wait at most, no
    /// database connection held meanwhile) and stored when it changed.
    pub async fn load(req: &HttpRequest, pool: &Pool, org: OrgId) -> Result<Self, AppError> {
        let stream = SsfStream::for_org(&mut *pool.get().await?, org).await?;
        let mut card = SsfCard {
            stream: None,
            endpoint: req
                .app_data::<web::Data<PublicUrl>>()
                .map(|u| u.join(crate::routes::ssf::PATH))
                .unwrap_or_default(),
            reason: None,
            status_unknown: false,
        };
        let Some(mut stream) = stream else {
            return Ok(card);
        };
        let (Some(http), Some(secrets)) = (
            req.app_data::<web::Data<IdpHttp>>(),
            req.app_data::<web::Data<SecretBox>>(),
        ) else {
            card.status_unknown = true;
            card.stream = Some(stream);
            return Ok(card);
        };
        match manage::read_status(http, secrets, &stream).await {
            Ok(remote) => {
                if remote.status != stream.status {
                    SsfStream::set_status(&mut *pool.get().await?, stream.id, remote.status)
                        .await?;
                    stream.status = remote.status;
                }
                card.reason = remote.reason;
            }
            Err(e) => {
                tracing::warn!(%org, error = %e, "cannot read the Shared Signals stream's status");
                card.status_unknown = true;
            }
        }
        card.stream = Some(stream);
        Ok(card)
    }
}

/// `GET /admin/ssf`: the card is on the Keys page.
pub async fn show(_admin: AdminUser) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, CARD))
        .finish()
}

#[derive(Deserialize)]
pub struct StreamForm {
    transmitter: String,
    delivery: String,
    #[serde(default)]
    bearer: String,
}

/// `POST /admin/ssf`: sets the org's stream up at a transmitter: the same one as before
/// updates the stream there in place (a blank bearer keeps the stored one), another one
/// replaces it.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn set(
    req: HttpRequest,
    admin: AdminUser,
    form: web::Form<StreamForm>,
    pool: web::Data<Pool>,
    secrets: web::Data<SecretBox>,
    http: web::Data<IdpHttp>,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, AppError> {
    let refuse = |message: String| Ok(flash::redirect(&req, CARD, Flash::error(message)));
    let transmitter = form.transmitter.trim().trim_end_matches('/');
    let Some(delivery) = Delivery::parse(form.delivery.trim()) else {
        return refuse("Choose push or poll delivery.".into());
    };
    let bearer = form.bearer.trim();
    if bearer.chars().any(char::is_control) || bearer.len() > 4096 {
        return refuse("The bearer token must be one line.".into());
    }
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, admin.0.org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
    let before = SsfStream::for_org(&mut conn, org.id)
        .await?
        .and_then(|s| s.stream_id);
    let setup = Setup {
        org: &org,
        transmitter,
        delivery,
        bearer: (!bearer.is_empty()).then(|| SecretString::from(bearer.to_owned())),
    };
    match manage::configure(&mut conn, &http, &secrets, &public_url, setup).await {
        Ok(stream) => {
            tracing::info!(transmitter, delivery = %delivery, "an admin set the Shared Signals stream");
            let done = if before.is_some() && before == stream.stream_id {
                "updated"
            } else {
                "created"
            };
            let message = format!(
                "Stream {} {done} at {} ({delivery} delivery).",
                stream.stream_id.as_deref().unwrap_or("?"),
                stream.transmitter
            );
            Ok(flash::redirect(&req, CARD, Flash::info(message)))
        }
        Err(manage::ManageError::Database(e)) => Err(e.into()),
        Err(e) => refuse(format!("The stream could not be set up: {e}")),
    }
}

/// `POST /admin/ssf/verify`: asks the transmitter for a verification event.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn verify(
    req: HttpRequest,
    admin: AdminUser,
    pool: web::Data<Pool>,
    secrets: web::Data<SecretBox>,
    http: web::Data<IdpHttp>,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let Some(stream) = SsfStream::for_org(&mut conn, admin.0.org_id).await? else {
        return Err(AppError::NotFound(
            "Your organisation has no Shared Signals stream.".into(),
        ));
    };
    let flash = match manage::request_verification(&mut conn, &http, &secrets, &stream).await {
        Ok(_) => Flash::info("Verification asked for: its arrival shows below."),
        Err(manage::ManageError::Database(e)) => return Err(e.into()),
        Err(e) => Flash::error(format!("The transmitter refused: {e}")),
    };
    Ok(flash::redirect(&req, CARD, flash))
}

/// `POST /admin/ssf/remove`: deletes the stream at the transmitter and here.
#[tracing::instrument(skip_all, fields(org = %admin.0.org_id, admin = %admin.0.id))]
pub async fn remove(
    req: HttpRequest,
    admin: AdminUser,
    pool: web::Data<Pool>,
    secrets: web::Data<SecretBox>,
    http: web::Data<IdpHttp>,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, admin.0.org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
    let flash = match manage::remove(&mut conn, &http, &secrets, &org).await {
        Ok(None) => Flash::info("Shared Signals stopped: the stream is deleted."),
        Ok(Some(problem)) => Flash::error(format!(
            "Shared Signals stopped here, but the transmitter could not delete the stream: {problem}"
        )),
        Err(manage::ManageError::Database(e)) => return Err(e.into()),
        Err(e) => Flash::error(e.to_string()),
    };
    Ok(flash::redirect(&req, CARD, flash))
}
