//! Revocations go first: Universal Logout takes its connections from a pool that page views
//! cannot exhaust (`src/priority.rs`).

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{count, spawn_app_with};

#[tokio::test]
async fn universal_logout_answers_while_page_views_hold_every_pooled_connection() {
    // One pooled connection for pages, and a page view that holds it, waiting on a lock.
    let app = spawn_app_with(|s| s.database_pool_size = 1).await;
    let alice = app.alice().await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;
    let mut locker = app.db.connect();
    locker
        .batch_execute("BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let page = tokio::spawn(async move { browser.get("/todos").await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &app.db,
        "pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%todos%'",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the page view never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let answer = app
        .universal_logout(
            &key,
            &json!({"sub_id": {"format": "email", "email": "alice@acme.test"}}),
        )
        .await;
    let took = started.elapsed();

    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    // Behind the page view it would wait for the pool's 5 s and answer 503.
    assert!(
        took < Duration::from_secs(2),
        "Universal Logout took {took:?}"
    );
    assert_eq!(
        count(
            &app.db,
            &format!("sessions WHERE user_id = '{}'", alice.user.id)
        ),
        0
    );
    locker.batch_execute("COMMIT").unwrap();
    // The page view finishes; its one statement (session and todos) waited for the lock and
    // read after the revocation, so it answers as signed out: nothing is shown after the 204.
    let page = page.await.unwrap();
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "the page view finishes"
    );
    assert!(
        page.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "{page:?}"
    );
}
