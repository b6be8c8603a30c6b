//! The todo list: the page, and the forms that change it.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::{
    auth::CurrentUser,
    db::{
        Pool,
        ids::TodoId,
        models::{Todo, todo::validate_title},
    },
    error::AppError,
    flash::{self, Flash},
    page::{self, Frame},
};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/todos")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .route("/todos/{id}/toggle", web::post().to(toggle))
    .route("/todos/{id}/delete", web::post().to(delete));
}

#[derive(Template, WebTemplate)]
#[template(path = "todos/index.html")]
pub struct TodosPage {
    pub frame: Frame,
    pub todos: Vec<Todo>,
    pub done: usize,
    pub max_title: usize,
}

/// `GET /todos`.
async fn list(
    req: HttpRequest,
    user: CurrentUser,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    // Read with the session, in its statement (see `prefetch`); here only if it was not.
    let todos = match crate::prefetch::take_todos() {
        Some(todos) => todos,
        None => {
            let mut conn = pool.get().await?;
            Todo::list_for_user(&mut conn, user.id).await?
        }
    };
    let done = todos.iter().filter(|t| t.done).count();
    let list = TodosPage {
        frame: user.frame(&req),
        todos,
        done,
        max_title: crate::db::models::todo::MAX_TITLE_CHARS,
    };
    Ok(page::render(&list, StatusCode::OK))
}

#[derive(Deserialize)]
struct NewTodoForm {
    title: String,
}

/// `POST /todos`: a refused title saves nothing and says why.
async fn create(
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<NewTodoForm>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let title = match validate_title(&form.title) {
        Ok(title) => title,
        Err(why) => {
            return Ok(flash::redirect(
                &req,
                "/todos",
                Flash::error(why.to_string()),
            ));
        }
    };
    let mut conn = pool.get().await?;
    Todo::create(&mut conn, user.id, title).await?;
    Ok(page::see_other("/todos"))
}

/// Parses a todo id from the path; a malformed one is simply not found.
fn todo_id(raw: &str) -> Result<TodoId, AppError> {
    raw.parse().map_err(|_| no_such_todo())
}

fn no_such_todo() -> AppError {
    AppError::NotFound("There is no such todo in your list.".into())
}

/// `POST /todos/{id}/toggle`: only the owner's todos; anyone else's is "not found".
async fn toggle(
    user: CurrentUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let id = todo_id(&path)?;
    let mut conn = pool.get().await?;
    Todo::toggle(&mut conn, user.id, id)
        .await?
        .ok_or_else(no_such_todo)?;
    // Back to the same item, so keyboard and screen-reader users keep their place.
    Ok(page::see_other(&format!("/todos#todo-{id}")))
}

/// `POST /todos/{id}/delete`: only the owner's todos; anyone else's is "not found".
async fn delete(
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, AppError> {
    let id = todo_id(&path)?;
    let mut conn = pool.get().await?;
    if !Todo::delete(&mut conn, user.id, id).await? {
        return Err(no_such_todo());
    }
    Ok(flash::redirect(
        &req,
        "/todos",
        Flash::info("Todo deleted."),
    ))
}
