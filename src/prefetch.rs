//! A page view in one database statement. The session store reads the session on every
//! request; for `GET /todos` it reads the user's list in the same statement (see
//! [`crate::db::models::session_page`]), so the page needs no second one. A session ended
//! before the statement reads as ended, on any instance.
//!
//! The store and the handler meet through a task-local slot that [`todo_list`] opens around the
//! request (the store's `load` is called by actix-session with the cookie's key only).

use std::cell::RefCell;

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
};

use crate::db::models::Todo;

tokio::task_local! {
    /// Present while a request wants its todos with its session; filled by the session store.
    static TODOS: RefCell<Option<Vec<Todo>>>;
}

/// Middleware, outside the session middleware: marks `GET /todos` as wanting its list with
/// the session.
pub async fn todo_list(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::GET && req.path() == "/todos" {
        TODOS.scope(RefCell::new(None), next.call(req)).await
    } else {
        next.call(req).await
    }
}

/// Whether the request being handled wants its todos read with its session.
pub fn wants_todos() -> bool {
    TODOS.try_with(|_| ()).is_ok()
}

/// Hands the todos read with the session to the handler.
pub fn put_todos(todos: Vec<Todo>) {
    let _ = TODOS.try_with(|slot| *slot.borrow_mut() = Some(todos));
}

/// The todos read with the session, if they were (taken: a second call gets `None`).
pub fn take_todos() -> Option<Vec<Todo>> {
    TODOS
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn todos_put_during_the_request_are_taken_once() {
        let todo = Todo {
            id: crate::db::ids::TodoId::new(),
            user_id: crate::db::ids::UserId::new(),
            title: "Water the plants".into(),
            done: false,
            created_at: time::OffsetDateTime::now_utc(),
            updated_at: time::OffsetDateTime::now_utc(),
        };
        TODOS
            .scope(RefCell::new(None), async {
                assert!(wants_todos());
                put_todos(vec![todo]);
                assert_eq!(take_todos().map(|t| t.len()), Some(1));
                assert!(take_todos().is_none());
            })
            .await;
    }

    #[tokio::test]
    async fn outside_a_marked_request_nothing_is_wanted_or_kept() {
        assert!(!wants_todos());
        put_todos(Vec::new());
        assert!(take_todos().is_none());
    }
}
