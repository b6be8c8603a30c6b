//! Revocations go first: Universal Logout takes its connections from a pool that page views
//! cannot exhaust (`src/priority.rs`).

use std::time::{Duration, Instant};

use diesel::{ExpressionMethods as _, connection::SimpleConnection as _};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{count, email_subject, spawn_app_with, universal_logout_at};

/// Waits until `n` statements of the test's database wait on a lock on `todos`.
async fn until_waiting_on_todos(app: &crate::helpers::TestApp, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &app.db,
        "pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%todos%'",
    ) < n
    {
        assert!(
            Instant::now() < deadline,
            "the page views never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn universal_logout_answers_while_page_views_hold_every_pooled_connection() {
    // One pooled connection for requests (and the session reads' two), each held by a page
    // view waiting on a lock: the list's read holds a session-read connection, a todo's
    // toggle holds the requests' one.
    let app = spawn_app_with(|s| s.database_pool_size = 1).await;
    let alice = app.alice().await;
    let key = app.api_key(alice.user.org_id).await;
    let todo = {
        use diesel::RunQueryDsl as _;
        let title = "Water the plants";
        diesel::insert_into(ual_todo::db::schema::todos::table)
            .values((
                ual_todo::db::schema::todos::user_id.eq(alice.user.id),
                ual_todo::db::schema::todos::title.eq(title),
            ))
            .returning(ual_todo::db::schema::todos::id)
            .get_result::<uuid::Uuid>(&mut app.db.connect())
            .unwrap()
    };
    let browser = app.signed_in(&alice).await;
    let toggler = app.signed_in(&alice).await;
    let mut locker = app.db.connect();
    locker
        .batch_execute("BEGIN; LOCK TABLE todos IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let page = tokio::spawn(async move { browser.get("/todos").await });
    until_waiting_on_todos(&app, 1).await;
    let toggle = tokio::spawn(async move {
        toggler
            .post_form(&format!("/todos/{todo}/toggle"), &[])
            .await
    });
    until_waiting_on_todos(&app, 2).await;

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
    // The toggle, in flight before the revocation, finishes.
    assert_eq!(toggle.await.unwrap().status(), StatusCode::SEE_OTHER);
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

#[tokio::test]
async fn page_views_give_way_to_a_revocation_being_written_but_are_not_stopped_by_it() {
    // A hold long enough to tell from a page view's own time.
    let app = spawn_app_with(|s| s.page_hold_ms = 1_500).await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;
    let _bobs_browser = app.signed_in(&bob).await;
    // Bob's session rows are locked: his revocation starts, and waits to delete them.
    let mut locker = app.db.connect();
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM sessions WHERE user_id = '{}' FOR UPDATE;",
            bob.user.id
        ))
        .unwrap();
    let logout = tokio::spawn({
        let (app_url, key) = (app.address.clone(), key.clone());
        async move {
            universal_logout_at(&app_url, &key, &email_subject("bob@acme.test"))
                .await
                .status()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &app.db,
        "pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%DELETE FROM sessions%'",
    ) < 1
    {
        assert!(Instant::now() < deadline, "the revocation never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let page = browser.get("/todos").await;
    let took = started.elapsed();

    // The page waited for the revocation, as long as a page may wait (at its admission and
    // at its read), and then went on.
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        took >= Duration::from_millis(1_500),
        "the page took {took:?}"
    );
    assert!(
        !logout.is_finished(),
        "the revocation is still being written"
    );
    locker.batch_execute("COMMIT").unwrap();
    assert_eq!(logout.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(
        count(
            &app.db,
            &format!("sessions WHERE user_id = '{}'", bob.user.id)
        ),
        0
    );
}

/// Sends Universal Logout for `subject` with `credential` while the API keys are locked (so the
/// call waits in its authentication), and returns how long a page view took meanwhile and the
/// call's answer once the lock is gone.
async fn page_view_while_a_call_authenticates(
    app: &crate::helpers::TestApp,
    browser: &crate::helpers::Browser,
    credential: &str,
    subject: &str,
) -> (Duration, StatusCode, StatusCode) {
    let mut locker = app.db.connect();
    locker
        .batch_execute("BEGIN; LOCK TABLE org_api_keys IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let logout = tokio::spawn({
        let (base, credential) = (app.address.clone(), credential.to_owned());
        let subject = email_subject(subject);
        async move {
            universal_logout_at(&base, &credential, &subject)
                .await
                .status()
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &app.db,
        "pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%org_api_keys%'",
    ) < 1
    {
        assert!(Instant::now() < deadline, "the call never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let page = browser.get("/todos").await;
    let took = started.elapsed();
    locker.batch_execute("COMMIT").unwrap();
    (took, page.status(), logout.await.unwrap())
}

#[tokio::test]
async fn a_universal_logout_call_with_a_forged_key_does_not_hold_page_views_back() {
    let app = spawn_app_with(|s| s.page_hold_ms = 1_500).await;
    let alice = app.alice().await;
    let _bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;
    // The real key has worked here, so its prefix is known; the forged one differs at the end.
    let first = app
        .universal_logout(&key, &email_subject("bob@acme.test"))
        .await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    let last = if key.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &key[..key.len() - 1]);

    let (took, page, logout) =
        page_view_while_a_call_authenticates(&app, &browser, &forged, "alice@acme.test").await;

    assert_eq!(page, StatusCode::OK);
    assert!(
        took < Duration::from_millis(1_500),
        "the page took {took:?}"
    );
    assert_eq!(logout, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_that_worked_before_holds_page_views_back_while_it_is_checked_again() {
    let app = spawn_app_with(|s| s.page_hold_ms = 1_500).await;
    let alice = app.alice().await;
    let _bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;
    let first = app
        .universal_logout(&key, &email_subject("bob@acme.test"))
        .await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);

    let (took, page, logout) =
        page_view_while_a_call_authenticates(&app, &browser, &key, "bob@acme.test").await;

    assert_eq!(page, StatusCode::OK);
    assert!(
        took >= Duration::from_millis(1_500),
        "the page took {took:?}"
    );
    assert_eq!(logout, StatusCode::NO_CONTENT);
}

/// The CPU time slices, in nanoseconds, of this process's threads named one of `names` (as the
/// kernel cuts names, to 15 bytes); `None` on a kernel that does not report them.
fn slices_of_threads(names: &[&str]) -> Option<Vec<u64>> {
    let own = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    own.contains("se.slice").then_some(())?;
    let threads = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        threads
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|comm| names.contains(&comm.trim_end()))
            })
            .filter_map(|t| {
                let sched = std::fs::read_to_string(t.path().join("sched")).ok()?;
                let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
                line.rsplit(':').next()?.trim().parse().ok()
            })
            .collect(),
    )
}

#[tokio::test]
async fn the_workers_and_the_revocation_lane_ask_for_a_short_cpu_time_slice() {
    // A slice no other test's app uses, to tell this app's threads from theirs.
    let app = spawn_app_with(|s| s.time_slice_us = 250).await;
    let answer = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);

    let Some(lanes) = slices_of_threads(&["revocation-lane"]) else {
        eprintln!("this kernel does not report time slices: nothing to check");
        return;
    };
    // Worker threads are named by actix-server, or by actix-rt in a system of its own.
    let workers = slices_of_threads(&["actix-server wo", "actix-rt|system"]).unwrap();

    assert!(lanes.contains(&250_000), "lanes: {lanes:?}");
    assert!(workers.contains(&250_000), "workers: {workers:?}");
}
