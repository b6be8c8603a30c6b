use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::db::{
    ids::{TodoId, UserId},
    schema::todos,
};

/// The longest title a todo may have, in characters (the table checks it too).
pub const MAX_TITLE_CHARS: usize = 500;

/// One item of a user's list.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable, serde::Serialize)]
#[diesel(table_name = todos, check_for_backend(diesel::pg::Pg))]
pub struct Todo {
    pub id: TodoId,
    #[serde(skip)]
    pub user_id: UserId,
    pub title: String,
    pub done: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(skip)]
    pub updated_at: OffsetDateTime,
}

/// Why a title was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    #[error("Write something to do first: the title is empty.")]
    Empty,
    #[error("That title is too long: keep it to {MAX_TITLE_CHARS} characters.")]
    TooLong,
    #[error("A title is one line of text: no control characters.")]
    ControlCharacters,
}

/// Trims a title and checks it is 1 to [`MAX_TITLE_CHARS`] characters of one line.
pub fn validate_title(raw: &str) -> Result<&str, TitleError> {
    let title = raw.trim();
    if title.is_empty() {
        Err(TitleError::Empty)
    } else if title.chars().count() > MAX_TITLE_CHARS {
        Err(TitleError::TooLong)
    } else if title.chars().any(char::is_control) {
        Err(TitleError::ControlCharacters)
    } else {
        Ok(title)
    }
}

impl Todo {
    /// The user's todos, oldest first.
    pub async fn list_for_user(
        conn: &mut AsyncPgConnection,
        user: UserId,
    ) -> QueryResult<Vec<Todo>> {
        todos::table
            .filter(todos::user_id.eq(user))
            .order((todos::created_at, todos::id))
            .select(Todo::as_select())
            .load(conn)
            .await
    }

    /// Adds a todo; `title` must already be validated.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        user: UserId,
        title: &str,
    ) -> QueryResult<Todo> {
        diesel::insert_into(todos::table)
            .values((todos::user_id.eq(user), todos::title.eq(title)))
            .returning(Todo::as_returning())
            .get_result(conn)
            .await
    }

    /// Flips `done` on the user's own todo; `None` when the user has no such todo.
    pub async fn toggle(
        conn: &mut AsyncPgConnection,
        user: UserId,
        id: TodoId,
    ) -> QueryResult<Option<Todo>> {
        diesel::update(
            todos::table
                .filter(todos::id.eq(id))
                .filter(todos::user_id.eq(user)),
        )
        .set((
            todos::done.eq(diesel::dsl::not(todos::done)),
            todos::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Todo::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes the user's own todo; `false` when the user has no such todo.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        user: UserId,
        id: TodoId,
    ) -> QueryResult<bool> {
        let deleted = diesel::delete(
            todos::table
                .filter(todos::id.eq(id))
                .filter(todos::user_id.eq(user)),
        )
        .execute(conn)
        .await?;
        Ok(deleted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(validate_title("  buy milk "), Ok("buy milk"));
        assert_eq!(validate_title("   "), Err(TitleError::Empty));
        assert_eq!(validate_title(&"é".repeat(500)).map(str::len), Ok(1000));
        assert_eq!(validate_title(&"é".repeat(501)), Err(TitleError::TooLong));
    }
}
