//! `/settings/tokens`: the user's personal access tokens for the JSON API.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use tracing_actix_web::RequestId;

use crate::{
    auth::CurrentUser,
    db::{
        Pool,
        models::{AccessToken, RevocationSource, access_token::MAX_NAME_CHARS},
    },
    error::AppError,
    flash::{self, Flash},
    page::{self, Frame},
    revocation::{self, Requester},
    secret_token,
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/settings/tokens")
            .route(web::get().to(tokens))
            .route(web::post().to(create)),
    )
    .route("/settings/tokens/{id}/revoke", web::post().to(revoke));
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens/index.html")]
pub struct TokensPage {
    pub frame: Frame,
    pub tokens: Vec<AccessToken>,
    /// A token just created: shown this once.
    pub new_token: Option<String>,
    pub api_url: String,
    pub max_name: usize,
}

async fn render(
    req: &HttpRequest,
    user: &CurrentUser,
    pool: &Pool,
    status: StatusCode,
    flash: Option<Flash>,
    new_token: Option<String>,
) -> Result<HttpResponse, AppError> {
    let tokens = {
        let mut conn = pool.get().await?;
        AccessToken::list_for_user(&mut conn, user.id).await?
    };
    let api_url = req
        .app_data::<web::Data<crate::config::PublicUrl>>()
        .map(|u| u.join("/api/todos"))
        .unwrap_or_default();
    let tokens_page = TokensPage {
        frame: Frame {
            viewer: Some(user.viewer()),
            flash,
        },
        tokens,
        new_token,
        api_url,
        max_name: MAX_NAME_CHARS,
    };
    Ok(page::render(&tokens_page, status))
}

/// `GET /settings/tokens`.
async fn tokens(
    req: HttpRequest,
    user: CurrentUser,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    render(
        &req,
        &user,
        &pool,
        StatusCode::OK,
        Flash::from_request(&req),
        None,
    )
    .await
}

#[derive(Deserialize)]
struct NewTokenForm {
    name: String,
}

/// `POST /settings/tokens`: creates a token and shows it once, in this response only (never in
/// a cookie or a redirect).
#[tracing::instrument(skip_all, fields(org = %user.org_id, user = %user.id))]
async fn create(
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<NewTokenForm>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let name = form.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        let why =
            format!("Give the token a name of 1 to {MAX_NAME_CHARS} characters, on one line.");
        return Ok(flash::redirect(&req, "/settings/tokens", Flash::error(why)));
    }
    let issued = {
        let mut conn = pool.get().await?;
        AccessToken::create(&mut conn, user.id, name).await?.1
    };
    let shown = secret_token::reveal(&issued).to_owned();
    let mut response = render(&req, &user, &pool, StatusCode::OK, None, Some(shown)).await?;
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `POST /settings/tokens/{id}/revoke`: only the user's own tokens; anyone else's is "not found".
#[tracing::instrument(skip_all, fields(org = %user.org_id, user = %user.id))]
async fn revoke(
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
    request_id: RequestId,
) -> Result<HttpResponse, AppError> {
    let not_found = || AppError::NotFound("There is no such live token among yours.".into());
    let id: uuid::Uuid = path.parse().map_err(|_| not_found())?;
    let request_id = request_id.to_string();
    let mut conn = pool.get().await?;
    let by = Requester::new(RevocationSource::SelfService, "user", &request_id);
    if !revocation::revoke_access_token(&mut conn, user.org_id, user.id, id, by).await? {
        return Err(not_found());
    }
    Ok(flash::redirect(
        &req,
        "/settings/tokens",
        Flash::info("Token revoked."),
    ))
}
