//! Revocations go first: Universal Logout takes its connections from a pool that page views
//! cannot exhaust (`src/priority.rs`).

use std::{
    future::Future,
    time::{Duration, Instant},
};

use diesel::{ExpressionMethods as _, connection::SimpleConnection as _};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{count, email_subject, spawn_app_with, universal_logout_at};

/// Waits until `n` statements of the test's database wait on a lock on `todos`.
async fn until_waiting_on_todos(app: &crate::helpers::TestApp, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        &app.db,
        "pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
         AND query ILIKE '%todos%'",
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

/// How long a page hold lasts in these tests: long enough to tell from a page view's own time.
const HOLD: Duration = Duration::from_millis(1_500);

/// What a page view did while a call waited on a lock.
struct Meanwhile {
    page_took: Duration,
    page: StatusCode,
    /// The call's answer, once the lock was gone.
    call: StatusCode,
}

/// Takes a lock with `lock` (SQL, in a transaction), sends `call` and waits until a statement
/// matching `waits_in` waits on the lock; then views `/todos` with `browser`, releases the lock
/// and lets the call finish.
async fn page_view_while_a_call_waits(
    app: &crate::helpers::TestApp,
    browser: &crate::helpers::Browser,
    lock: &str,
    waits_in: &str,
    call: impl Future<Output = StatusCode> + Send + 'static,
) -> Meanwhile {
    let mut locker = app.db.connect();
    locker.batch_execute(&format!("BEGIN; {lock}")).unwrap();
    let call = tokio::spawn(call);
    let deadline = Instant::now() + Duration::from_secs(10);
    // Only this test's database: other tests wait on locks of their own.
    let waiting = format!(
        "pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
         AND query ILIKE '%{waits_in}%'"
    );
    while count(&app.db, &waiting) < 1 {
        assert!(Instant::now() < deadline, "the call never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let page = browser.get("/todos").await;
    let page_took = started.elapsed();
    assert!(!call.is_finished(), "the call still waits");
    locker.batch_execute("COMMIT").unwrap();
    Meanwhile {
        page_took,
        page: page.status(),
        call: call.await.unwrap(),
    }
}

/// Locks `user`'s session rows: a revocation of them starts, and waits to delete them.
fn sessions_of(user: &crate::helpers::TestUser) -> String {
    format!(
        "SELECT 1 FROM sessions WHERE user_id = '{}' FOR UPDATE;",
        user.user.id
    )
}

const DELETING_SESSIONS: &str = "DELETE FROM sessions";
const LOCKED_KEYS: &str = "LOCK TABLE org_api_keys IN ACCESS EXCLUSIVE MODE;";

fn universal_logout_of(
    app: &crate::helpers::TestApp,
    credential: &str,
    email: &str,
) -> impl Future<Output = StatusCode> + Send + 'static {
    let (base, credential) = (app.address.clone(), credential.to_owned());
    let subject = email_subject(email);
    async move {
        universal_logout_at(&base, &credential, &subject)
            .await
            .status()
    }
}

/// Alice browsing her todos and Bob signed in too, in an org with an API key, in an app whose
/// pages wait up to [`HOLD`].
struct Scene {
    app: crate::helpers::TestApp,
    bob: crate::helpers::TestUser,
    key: String,
    browser: crate::helpers::Browser,
}

async fn scene() -> Scene {
    let app = spawn_app_with(|s| s.page_hold_ms = HOLD.as_millis() as u64).await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;
    let _bobs_browser = app.signed_in(&bob).await;
    Scene {
        app,
        bob,
        key,
        browser,
    }
}

impl Scene {
    /// A page view while `call` waits to delete Bob's sessions.
    async fn while_ending_bobs_sessions(
        &self,
        call: impl Future<Output = StatusCode> + Send + 'static,
    ) -> Meanwhile {
        let lock = sessions_of(&self.bob);
        page_view_while_a_call_waits(&self.app, &self.browser, &lock, DELETING_SESSIONS, call).await
    }

    /// A page view while `call` waits to read the API keys.
    async fn while_reading_keys(
        &self,
        call: impl Future<Output = StatusCode> + Send + 'static,
    ) -> Meanwhile {
        page_view_while_a_call_waits(&self.app, &self.browser, LOCKED_KEYS, "org_api_keys", call)
            .await
    }

    /// Signs Bob out with the key, so that this instance knows it.
    async fn use_the_key(&self) {
        let answer = self
            .app
            .universal_logout(&self.key, &email_subject("bob@acme.test"))
            .await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    }

    fn bobs_sessions(&self) -> i64 {
        count(
            &self.app.db,
            &format!("sessions WHERE user_id = '{}'", self.bob.user.id),
        )
    }
}

/// The page waited as long as a page may wait (at its admission and at its read), and then
/// went on although the call was still being written.
fn assert_the_page_gave_way(meanwhile: &Meanwhile) {
    assert_eq!(meanwhile.page, StatusCode::OK);
    let took = meanwhile.page_took;
    assert!(took >= HOLD, "the page took {took:?}");
}

#[tokio::test]
async fn page_views_give_way_to_a_revocation_being_written_but_are_not_stopped_by_it() {
    let s = scene().await;

    let call = universal_logout_of(&s.app, &s.key, "bob@acme.test");
    let meanwhile = s.while_ending_bobs_sessions(call).await;

    assert_the_page_gave_way(&meanwhile);
    assert_eq!(meanwhile.call, StatusCode::NO_CONTENT);
    assert_eq!(s.bobs_sessions(), 0);
}

#[tokio::test]
async fn page_views_give_way_to_an_admin_signing_a_user_out_everywhere() {
    let s = scene().await;
    let org = s.bob.user.org_id;
    let admin = s.app.create_user(org, "admin@acme.test", true).await;
    let admin_browser = s.app.signed_in(&admin).await;

    let path = format!("/admin/users/{}/logout", s.bob.user.id);
    let call = async move { admin_browser.post_form(&path, &[]).await.status() };
    let meanwhile = s.while_ending_bobs_sessions(call).await;

    assert_the_page_gave_way(&meanwhile);
    assert_eq!(meanwhile.call, StatusCode::SEE_OTHER);
    assert_eq!(s.bobs_sessions(), 0);
}

#[tokio::test]
async fn page_views_give_way_to_a_scim_deactivation() {
    let s = scene().await;
    let token = crate::scim_client::scim_token(&s.app, s.bob.user.org_id).await;
    let url = s.app.url(&format!("/scim/v2/Users/{}", s.bob.user.id));
    let body = crate::scim_client::patch_op(json!([{"op": "replace", "value": {"active": false}}]));

    let call = async move {
        reqwest::Client::new()
            .patch(url)
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
    };
    let meanwhile = s.while_ending_bobs_sessions(call).await;

    assert_the_page_gave_way(&meanwhile);
    assert_eq!(meanwhile.call, StatusCode::OK);
    assert_eq!(s.bobs_sessions(), 0);
}

#[tokio::test]
async fn a_universal_logout_call_with_a_forged_key_does_not_hold_page_views_back() {
    let s = scene().await;
    // The real key has worked here, so its prefix is known; the forged one differs at the end.
    s.use_the_key().await;
    let last = if s.key.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &s.key[..s.key.len() - 1]);

    let call = universal_logout_of(&s.app, &forged, "alice@acme.test");
    let meanwhile = s.while_reading_keys(call).await;

    assert_eq!(meanwhile.page, StatusCode::OK);
    let took = meanwhile.page_took;
    assert!(took < HOLD, "the page took {took:?}");
    assert_eq!(meanwhile.call, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_that_worked_before_holds_page_views_back_while_it_is_checked_again() {
    let s = scene().await;
    s.use_the_key().await;

    let call = universal_logout_of(&s.app, &s.key, "bob@acme.test");
    let meanwhile = s.while_reading_keys(call).await;

    assert_the_page_gave_way(&meanwhile);
    assert_eq!(meanwhile.call, StatusCode::NO_CONTENT);
}

/// A key that worked, then `refusing` (SQL) makes the database refuse it with `status`: once
/// refused, it no longer holds page views back.
async fn a_refused_key_is_forgotten(refusing: &str, status: StatusCode) {
    let s = scene().await;
    s.use_the_key().await;
    s.app.db.connect().batch_execute(refusing).unwrap();
    let refused = s
        .app
        .universal_logout(&s.key, &email_subject("bob@acme.test"))
        .await;
    assert_eq!(refused.status(), status);

    let call = universal_logout_of(&s.app, &s.key, "bob@acme.test");
    let meanwhile = s.while_reading_keys(call).await;

    assert_eq!(meanwhile.page, StatusCode::OK);
    let took = meanwhile.page_took;
    assert!(took < HOLD, "the page took {took:?}");
    assert_eq!(meanwhile.call, status);
}

#[tokio::test]
async fn a_key_revoked_after_it_worked_no_longer_holds_page_views_back_once_refused() {
    let revoke = "UPDATE org_api_keys SET revoked_at = now()";
    a_refused_key_is_forgotten(revoke, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_key_of_an_org_disabled_after_it_worked_no_longer_holds_page_views_back() {
    let disable = "UPDATE orgs SET disabled_at = now()";
    a_refused_key_is_forgotten(disable, StatusCode::FORBIDDEN).await;
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
