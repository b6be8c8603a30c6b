//! `/admin/ssf`: the org's Shared Signals stream, as `ual-todo org set-ssf` sets it up: the
//! transmitter, how SETs arrive, the stream's status, verification, the events received and the
//! last error; forms to point the org at a transmitter, ask for a verification, or stop.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    auth::{AdminUser, idp_http::IdpHttp},
    config::PublicUrl,
    db::{
        Pool,
        models::{Delivery, Org, SsfStream},
    },
    error::AppError,
    flash::{self, Flash},
    page::{self, Frame},
    secret_box::SecretBox,
    ssf::manage::{self, Setup},
};

/// Where the page is.
pub const PATH: &str = "/admin/ssf";

#[derive(Template, WebTemplate)]
#[template(path = "admin/ssf.html")]
pub struct SsfPage {
    pub frame: Frame,
    pub section: &'static str,
    pub org: Org,
    pub stream: Option<SsfStream>,
    /// Where pushed SETs arrive.
    pub endpoint: String,
}

/// `GET /admin/ssf`.
pub async fn show(
    req: HttpRequest,
    admin: AdminUser,
    pool: web::Data<Pool>,
    public_url: web::Data<PublicUrl>,
) -> Result<HttpResponse, AppError> {
    let mut conn = pool.get().await?;
    let org = Org::find(&mut conn, admin.0.org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("Your organisation no longer exists.".into()))?;
    let stream = SsfStream::for_org(&mut conn, org.id).await?;
    let ssf_page = SsfPage {
        frame: admin.0.frame(&req),
        section: "ssf",
        org,
        stream,
        endpoint: public_url.join(crate::routes::ssf::PATH),
    };
    let mut response = page::render(&req, StatusCode::OK, ssf_page);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct StreamForm {
    transmitter: String,
    delivery: String,
    #[serde(default)]
    bearer: String,
}

/// `POST /admin/ssf`: creates the org's stream at a transmitter (replacing the old one).
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
    let refuse = |message: String| Ok(flash::redirect(&req, PATH, Flash::error(message)));
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
    let setup = Setup {
        org: &org,
        transmitter,
        delivery,
        bearer: (!bearer.is_empty()).then(|| SecretString::from(bearer.to_owned())),
    };
    match manage::configure(&mut conn, &http, &secrets, &public_url, setup).await {
        Ok(stream) => {
            tracing::info!(transmitter, delivery = %delivery, "an admin set the Shared Signals stream");
            let message = format!(
                "Stream {} created at {} ({delivery} delivery).",
                stream.stream_id.as_deref().unwrap_or("?"),
                stream.transmitter
            );
            Ok(flash::redirect(&req, PATH, Flash::info(message)))
        }
        Err(manage::ManageError::Database(e)) => Err(e.into()),
        Err(e) => refuse(format!("The stream could not be created: {e}")),
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
    Ok(flash::redirect(&req, PATH, flash))
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
    Ok(flash::redirect(&req, PATH, flash))
}
