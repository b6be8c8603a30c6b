//! A worker's page views read through one shared connection, pipelined
//! (`src/db/pipelined.rs`): overlapping reads queue on it instead of each taking a backend.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use reqwest::StatusCode;

use crate::helpers::{TestApp, count, spawn_app_with};

/// The statements of this test's database that wait on a lock on `todos`.
fn waiting_on_todos(app: &TestApp) -> i64 {
    count(
        &app.db,
        "pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query ILIKE '%todos%'",
    )
}

#[tokio::test]
async fn overlapping_page_views_of_a_worker_queue_on_one_connection_and_all_answer() {
    // One worker, with a pool of four connections that the page views no longer use.
    let app = spawn_app_with(|s| s.database_pool_size = 4).await;
    let alice = app.alice().await;
    let mut browsers = Vec::new();
    for _ in 0..3 {
        browsers.push(app.signed_in(&alice).await);
    }
    let mut locker = app.db.connect();
    locker
        .batch_execute("BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE;")
        .unwrap();

    let pages: Vec<_> = browsers
        .into_iter()
        .map(|browser| tokio::spawn(async move { browser.get("/todos").await }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting_on_todos(&app) < 1 {
        assert!(Instant::now() < deadline, "no page view reached the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time for the other two to reach the database, were they on connections of their own.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = waiting_on_todos(&app);
    locker.batch_execute("COMMIT").unwrap();

    assert_eq!(
        waiting, 1,
        "the first read waits on the lock; the others wait behind it on its connection"
    );
    for page in pages {
        let page = page.await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("Your todos"));
    }
}

#[tokio::test]
async fn when_the_shared_connection_dies_the_next_page_view_reads_through_a_new_one() {
    let app = spawn_app_with(|_| {}).await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    assert_eq!(browser.get("/todos").await.status(), StatusCode::OK);

    let killed = count(
        &app.db,
        "(SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid() \
          AND query LIKE '%FROM s JOIN todos%') AS killed",
    );
    assert_eq!(killed, 1, "the page views' one connection");
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(
        &app.db,
        "pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE '%FROM s JOIN todos%'",
    ) > 0
    {
        assert!(Instant::now() < deadline, "the backend did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let page = browser.get("/todos").await;

    assert_eq!(
        page.status(),
        StatusCode::OK,
        "read again on a new connection"
    );
    assert!(page.text().await.unwrap().contains("Your todos"));
    let reads = count(
        &app.db,
        "pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE '%FROM s JOIN todos%'",
    );
    assert_eq!(reads, 1, "one new connection");
}

/// The backend serving `conn`.
async fn backend_pid(mut conn: &diesel_async::AsyncPgConnection) -> diesel::QueryResult<i32> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    use diesel_async::RunQueryDsl as _;
    let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(&mut conn)
        .await?;
    Ok(row.pid)
}

#[tokio::test]
async fn a_read_that_does_not_answer_in_time_fails_and_gives_its_connection_up() {
    use ual_todo::db::{models::session_page, pipelined::PipelinedConnection};
    let app = spawn_app_with(|_| {}).await;
    let shared =
        PipelinedConnection::new(app.db.url.clone()).with_read_timeout(Duration::from_millis(300));
    let before = shared.read(backend_pid).await.unwrap();
    let mut locker = app.db.connect();
    locker
        .batch_execute("BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE;")
        .unwrap();

    let started = Instant::now();
    let stuck = shared
        .read(async |conn| {
            let now = time::OffsetDateTime::now_utc();
            session_page::find_live_with_todos(conn, b"no such session", now).await
        })
        .await;
    let waited = started.elapsed();
    locker.batch_execute("COMMIT").unwrap();
    let after = shared.read(backend_pid).await.unwrap();

    let error = stuck.map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("did not answer in time"), "{error}");
    assert!(
        waited < Duration::from_secs(2),
        "not tried again: {waited:?}"
    );
    assert_ne!(after, before, "the next read goes through a new connection");
}
