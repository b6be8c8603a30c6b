//! The hot statements (a page view's read, the revocation) are raw SQL prepared once per
//! connection, and the page view's read is one statement that sees one snapshot.

use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ual_todo::{
    db::models::{RevocationSource, Todo, User, session_page},
    priority::RevocationPool,
    revocation::{self, Requester},
    session_store::PgSessionStore,
};

use crate::helpers::{TestApp, TestUser, spawn_app};
use ual_todo::db::PooledConnection;

/// How often a prepared statement ran with a generic plan, and with a custom one.
#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

/// The statements this connection holds prepared whose text contains `marker`. The marker is
/// bound, so that this query's own text does not match it.
async fn prepared_with(conn: &mut AsyncPgConnection, marker: &str) -> Vec<Plans> {
    diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE strpos(statement, $1) > 0",
    )
    .bind::<diesel::sql_types::Text, _>(marker)
    .load(conn)
    .await
    .unwrap()
}

/// Alice, signed in on a fresh app with `todos` in this order: the app (keep it bound to the
/// end of the test: dropped, it drops its database), Alice, her session's key hash (of cookie
/// key `[key; 32]`) and a connection.
struct SignedIn {
    app: TestApp,
    alice: TestUser,
    id: Vec<u8>,
    conn: PooledConnection,
}

async fn alice_signed_in(key: u8, todos: &[&str]) -> SignedIn {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let cookie_key = hex::encode([key; 32]);
    app.insert_session(&alice, &cookie_key);
    let mut conn = app.conn().await;
    for title in todos {
        Todo::create(&mut conn, alice.user.id, title).await.unwrap();
    }
    SignedIn {
        id: PgSessionStore::hash_key(&cookie_key),
        app,
        alice,
        conn,
    }
}

#[tokio::test]
async fn a_page_view_reads_the_session_and_its_todos_in_one_statement_prepared_once() {
    let SignedIn {
        app: _app,
        alice,
        id,
        mut conn,
    } = alice_signed_in(
        3,
        &["Water the plants", "Call the <b>plumber</b>", "Pay rent"],
    )
    .await;
    let now = time::OffsetDateTime::now_utc();

    let first = session_page::find_live_with_todos(&conn, &id, now)
        .await
        .unwrap();
    let again = session_page::find_live_with_todos(&conn, &id, now)
        .await
        .unwrap();

    let (session, todos) = first.expect("a live session is found");
    let titles: Vec<_> = todos.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Water the plants", "Call the <b>plumber</b>", "Pay rent"],
        "oldest first"
    );
    assert!(todos.iter().all(|t| t.user_id == alice.user.id));
    assert!(
        String::from_utf8(session.state.0)
            .unwrap()
            .contains("actix_identity.user_id")
    );
    assert_eq!(again.map(|(_, t)| t.len()), Some(3));
    assert_eq!(
        prepared_with(&mut conn, "FROM s JOIN todos t").await.len(),
        1,
        "the statement is kept prepared on the connection, once"
    );
}

#[tokio::test]
async fn an_ended_or_expired_session_reads_as_none_whatever_its_user_has() {
    let SignedIn {
        app: _app,
        alice,
        id,
        mut conn,
    } = alice_signed_in(4, &["Water the plants"]).await;
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(2);

    let expired = session_page::find_live_with_todos(&conn, &id, later)
        .await
        .unwrap();
    revocation::revoke_user(
        &mut conn,
        alice.user.org_id,
        alice.user.id,
        Requester::new(RevocationSource::Admin, "test", "request-1"),
    )
    .await
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ended = session_page::find_live_with_todos(&conn, &id, now)
        .await
        .unwrap();

    assert!(
        expired.is_none(),
        "past its expiry, a session reads as none"
    );
    assert!(ended.is_none(), "revoked, a session reads as none");
}

#[tokio::test]
async fn a_signed_in_user_without_todos_reads_as_live_with_an_empty_list() {
    let SignedIn { app, id, .. } = alice_signed_in(5, &[]).await;

    let found = session_page::find_live_with_todos(
        &*app.conn().await,
        &id,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();

    assert_eq!(found.map(|(_, todos)| todos.len()), Some(0));
}

#[tokio::test]
async fn the_revocation_statement_is_prepared_once_per_connection() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let mut conn = app.conn().await;
    let by = Requester::new(RevocationSource::Admin, "test", "request-1");

    for _ in 0..3 {
        revocation::revoke_user(&mut conn, alice.user.org_id, alice.user.id, by)
            .await
            .unwrap();
    }

    assert_eq!(
        prepared_with(&mut conn, "INSERT INTO seen_jtis")
            .await
            .len(),
        1,
        "three revocations, one prepared statement"
    );
}

#[tokio::test]
async fn the_revocation_lane_plans_the_revocation_once_not_at_every_call() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let url = RevocationPool::database_url(&app.db.url);
    let mut conn = AsyncPgConnection::establish(url.expose()).await.unwrap();
    let by = Requester::new(RevocationSource::Admin, "test", "request-1");

    for _ in 0..8 {
        revocation::revoke_user(&mut conn, alice.user.org_id, alice.user.id, by)
            .await
            .unwrap();
    }

    let plans = prepared_with(&mut conn, "INSERT INTO seen_jtis").await;
    let plans: Vec<_> = plans
        .iter()
        .map(|p| (p.generic_plans, p.custom_plans))
        .collect();
    assert_eq!(
        plans,
        [(8, 0)],
        "eight revocations ran one generic plan, none planned anew"
    );
}

#[tokio::test]
async fn the_todos_read_with_the_session_come_oldest_first_whatever_their_order_on_disk() {
    let SignedIn {
        app: _app,
        id,
        mut conn,
        ..
    } = alice_signed_in(6, &["Second", "Third", "First"]).await;
    // Updated, "First" is written anew after the others on disk, and dated before them.
    diesel::sql_query(
        "UPDATE todos SET created_at = created_at - interval '1 hour' WHERE title = 'First'",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let (_, todos) =
        session_page::find_live_with_todos(&conn, &id, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .expect("a live session is found");

    let titles: Vec<_> = todos.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["First", "Second", "Third"]);
}

/// How often this transaction scanned the users table: reading it whole, and through an index.
#[derive(QueryableByName, Debug, PartialEq)]
struct Scans {
    #[diesel(sql_type = BigInt)]
    seq_scan: i64,
    #[diesel(sql_type = BigInt)]
    idx_scan: i64,
}

#[tokio::test]
async fn on_the_revocation_lane_a_user_is_found_through_an_index_not_by_reading_every_user() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let (org, email) = (alice.user.org_id, alice.user.email.to_uppercase());
    let url = RevocationPool::database_url(&app.db.url);
    let mut conn = AsyncPgConnection::establish(url.expose()).await.unwrap();
    // Enough users that reading them all costs more than an index probe.
    diesel::sql_query(
        "INSERT INTO users (org_id, email) \
         SELECT $1, 'user' || g || '@example.com' FROM generate_series(1, 5000) g",
    )
    .bind::<diesel::sql_types::Uuid, _>(org)
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query("ANALYZE users")
        .execute(&mut conn)
        .await
        .unwrap();

    let scans = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let found = User::find_by_email(conn, org, &email).await?;
            assert_eq!(found.map(|u| u.id), Some(alice.user.id));
            let nobody = User::find_by_oidc(conn, org, "https://idp.test", "nobody").await?;
            assert!(nobody.is_none());
            diesel::sql_query(
                "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'users'",
            )
            .get_result::<Scans>(conn)
            .await
        })
        .await
        .unwrap();

    assert_eq!(
        scans,
        Scans {
            seq_scan: 0,
            idx_scan: 2
        },
        "each lookup is one index probe, although the lane's plans are generic"
    );
}
