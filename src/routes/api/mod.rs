//! The JSON API, for scripts and CLIs: `Authorization: Bearer <personal access token>`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::{
    auth::ApiUser,
    db::{
        Pool,
        models::{Todo, todo::validate_title},
    },
    error::{ApiError, AppError},
};

/// Largest JSON body accepted.
const JSON_LIMIT: usize = 16 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .app_data(
                web::JsonConfig::default()
                    .limit(JSON_LIMIT)
                    .error_handler(|e, _| {
                        ApiError(AppError::BadRequest(format!(
                            "the body could not be read as JSON: {e}"
                        )))
                        .into()
                    }),
            )
            .service(
                web::resource("/todos")
                    .route(web::get().to(list))
                    .route(web::post().to(create)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(AppError::NotFound("no such API route".into()).into())
}

/// `GET /api/todos`: the caller's todos, oldest first.
async fn list(user: ApiUser, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    let mut conn = pool.get().await?;
    let todos = Todo::list_for_user(&mut conn, user.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "todos": todos })))
}

#[derive(Deserialize)]
struct NewTodo {
    title: String,
}

/// `POST /api/todos` with `{"title": "…"}`: 201 with the todo.
async fn create(
    user: ApiUser,
    body: web::Json<NewTodo>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    let title = validate_title(&body.title).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let mut conn = pool.get().await?;
    let todo = Todo::create(&mut conn, user.id, title).await?;
    Ok(HttpResponse::Created().json(todo))
}
