//! A page view's one statement: the live session and its user's todos, read together (see
//! [`crate::prefetch`]). One row is the session's (its todo columns NULL), the rest are its
//! user's todos (their session columns NULL); no row means the session has ended (or never
//! was). One statement is one snapshot: the todos are those of a live session. Diesel's query
//! builder cannot say this `UNION ALL` of differently shaped halves, so it is raw SQL,
//! [`Prepared`] so that it is parsed and planned once.

use diesel::{
    QueryableByName,
    sql_types::{Bool, Bytea, Jsonb, Nullable, Text, Timestamptz, Uuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use super::{
    Todo,
    session::{LiveSession, RawJson},
};
use crate::db::{
    ids::{TodoId, UserId},
    prepared::Prepared,
};

/// `$1` is the session's key hash, `$2` the time it must be live at. The session is read once
/// (the materialized `s`) for both halves. No `ORDER BY`: sorting twenty rows cost PostgreSQL a
/// Sort node on every page view, and costs Rust next to nothing.
const SQL: &str = "\
    WITH s AS MATERIALIZED ( \
        SELECT state, created_at, last_seen_at, idp_ends_at, reauth_requested_at, user_id \
        FROM sessions WHERE id = $1 AND expires_at > $2) \
    SELECT s.state, s.created_at, s.last_seen_at, s.idp_ends_at, s.reauth_requested_at, \
           NULL::uuid AS todo_id, NULL::uuid AS todo_user_id, NULL::text AS title, \
           NULL::bool AS done, NULL::timestamptz AS todo_created_at, \
           NULL::timestamptz AS todo_updated_at \
    FROM s \
    UNION ALL \
    SELECT NULL, NULL, NULL, NULL, NULL, t.id, t.user_id, t.title, t.done, t.created_at, t.updated_at \
    FROM s JOIN todos t ON t.user_id = s.user_id";

/// Names [`SQL`] in the connection's statement cache.
struct PageStatement;

/// A row of the statement: the session's columns, or a todo's.
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Jsonb>)]
    state: Option<RawJson>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_seen_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    idp_ends_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    reauth_requested_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Uuid>)]
    todo_id: Option<TodoId>,
    #[diesel(sql_type = Nullable<Uuid>)]
    todo_user_id: Option<UserId>,
    #[diesel(sql_type = Nullable<Text>)]
    title: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    done: Option<bool>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    todo_created_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    todo_updated_at: Option<OffsetDateTime>,
}

impl Row {
    fn todo(self) -> Option<Todo> {
        Some(Todo {
            id: self.todo_id?,
            user_id: self.todo_user_id?,
            title: self.title?,
            done: self.done?,
            created_at: self.todo_created_at?,
            updated_at: self.todo_updated_at?,
        })
    }
}

/// The session with this key hash, unless it has expired, and its user's todos, oldest first;
/// one snapshot, one round trip.
pub async fn find_live_with_todos(
    mut conn: &AsyncPgConnection,
    id: &[u8],
    now: OffsetDateTime,
) -> diesel::QueryResult<Option<(LiveSession, Vec<Todo>)>> {
    let query = diesel::sql_query(SQL)
        .bind::<Bytea, _>(id)
        .bind::<Timestamptz, _>(now);
    // Through a shared reference, so that reads on one connection can overlap (pipelined).
    let rows = Prepared::<_, PageStatement>::new(query)
        .load::<Row>(&mut conn)
        .await?;
    let (sessions, todos): (Vec<Row>, Vec<Row>) =
        rows.into_iter().partition(|row| row.todo_id.is_none());
    let Some(Row {
        state: Some(state),
        created_at: Some(created_at),
        last_seen_at: Some(last_seen_at),
        idp_ends_at,
        reauth_requested_at,
        ..
    }) = sessions.into_iter().next()
    else {
        return Ok(None);
    };
    let session = LiveSession {
        state,
        created_at,
        last_seen_at,
        idp_ends_at,
        reauth_requested_at,
    };
    let mut todos: Vec<Todo> = todos.into_iter().filter_map(Row::todo).collect();
    todos.sort_unstable_by_key(|todo| (todo.created_at, todo.id));
    Ok(Some((session, todos)))
}
