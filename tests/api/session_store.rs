//! The session store's promises, one by one.

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

use std::collections::HashMap;

use actix_session::storage::{SessionKey, SessionStore as _};
use actix_web::cookie::{Cookie, CookieJar, Key, time::Duration as CookieDuration};
use diesel::{prelude::*, sql_types::Text};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use ual_todo::{
    db::models::RevocationSource,
    revocation::{self, Requester},
    session_store::PgSessionStore,
    sweeper,
};

use crate::helpers::{TestApp, assert_is_redirect_to, count, spawn_app};

/// The session key inside a browser's (encrypted) session cookie.
fn session_key(app: &TestApp, cookie_header: &str) -> String {
    let pair = cookie_header
        .split("; ")
        .find(|c| c.starts_with("ual_todo="))
        .expect("a session cookie");
    let cookie = Cookie::parse_encoded(pair.to_owned()).unwrap();
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    jar.private(&cookie_key(app))
        .get("ual_todo")
        .expect("the cookie decrypts")
        .value()
        .to_owned()
}

/// The key the app encrypts its cookies with, kept in the database.
fn cookie_key(app: &TestApp) -> Key {
    let hex_key: String = ual_todo::db::schema::settings::table
        .find("cookie_key")
        .select(ual_todo::db::schema::settings::value)
        .first(&mut app.db.connect())
        .unwrap();
    Key::from(&hex::decode(hex_key).unwrap())
}

/// Every row of every table of the app, as text.
fn dump(app: &TestApp) -> String {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        line: String,
    }
    let mut conn = app.db.connect();
    let tables: Vec<String> =
        diesel::sql_query("SELECT tablename AS line FROM pg_tables WHERE schemaname = 'public'")
            .load::<Row>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.line)
            .collect();
    assert!(tables.iter().any(|t| t == "sessions"));
    tables
        .iter()
        .flat_map(|table| {
            diesel::sql_query(format!("SELECT t::text AS line FROM {table} t"))
                .load::<Row>(&mut conn)
                .unwrap()
        })
        .map(|r| r.line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn session_column(app: &TestApp, column: &str) -> String {
    #[derive(QueryableByName)]
    struct Value {
        #[diesel(sql_type = Text)]
        value: String,
    }
    diesel::sql_query(format!("SELECT {column}::text AS value FROM sessions"))
        .get_result::<Value>(&mut app.db.connect())
        .unwrap()
        .value
}

fn execute(app: &TestApp, sql: &str) {
    diesel::sql_query(sql)
        .execute(&mut app.db.connect())
        .unwrap();
}

#[tokio::test]
async fn the_raw_cookie_value_is_found_nowhere_in_the_database() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let cookie = browser.cookie_header().unwrap();
    let key = session_key(&app, &cookie);
    let cookie_value = cookie.split_once('=').unwrap().1;

    let everything = dump(&app);

    assert_eq!(key.len(), 64, "256 random bits, hex-encoded");
    assert!(!everything.contains(&key), "the session key is not stored");
    assert!(
        !everything.contains(cookie_value),
        "the cookie is not stored"
    );
    let expected_id = format!("\\x{}", hex::encode(Sha256::digest(key.as_bytes())));
    assert_eq!(
        session_column(&app, "id"),
        expected_id,
        "rows are keyed by the key's SHA-256"
    );
}

#[tokio::test]
async fn sign_in_fills_the_user_org_and_device_columns() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    browser.page("/todos").await;

    let who = format!(
        "sessions WHERE user_id = '{}' AND org_id = '{}' AND ip = '127.0.0.1'",
        alice.user.id, alice.user.org_id
    );
    assert_eq!(count(&app.db, &who), 1);
}

#[tokio::test]
async fn a_row_built_as_signed_in_loads_as_that_users_session() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let key = hex::encode([7u8; 32]);
    let meta = app.insert_session(&alice, &key);
    let mut jar = CookieJar::new();
    jar.private_mut(&cookie_key(&app))
        .add(Cookie::new("ual_todo", key));
    let sealed = jar.delta().next().unwrap().value().to_owned();

    let response = app
        .browser()
        .client
        .get(app.url("/todos"))
        .header("Cookie", format!("ual_todo={sealed}"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains(&alice.user.email));
    let who = format!(
        "sessions WHERE user_id = '{}' AND org_id = '{}' AND public_id = '{}'",
        alice.user.id, alice.user.org_id, meta.id
    );
    assert_eq!(count(&app.db, &who), 1, "the columns come from the state");
}

#[tokio::test]
async fn an_expired_session_is_not_loaded() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    execute(
        &app,
        "UPDATE sessions SET expires_at = now() - interval '1 second'",
    );

    browser.assert_signed_out().await;
}

#[tokio::test]
async fn activity_moves_the_idle_deadline_forward() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    execute(
        &app,
        "UPDATE sessions SET last_seen_at = now() - interval '2 minutes', expires_at = now() + interval '30 seconds'",
    );

    assert!(browser.is_signed_in().await);

    // Default idle timeout: 12 hours.
    assert_eq!(
        count(
            &app.db,
            "sessions WHERE expires_at > now() + interval '11 hours 59 minutes' AND last_seen_at > now() - interval '10 seconds'"
        ),
        1
    );
}

#[tokio::test]
async fn activity_never_extends_a_session_past_its_lifetime() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    // Signed in almost 7 days (the default lifetime) ago.
    execute(
        &app,
        "UPDATE sessions SET created_at = now() - interval '7 days' + interval '1 hour', \
         last_seen_at = now() - interval '2 minutes'",
    );

    assert!(browser.is_signed_in().await);

    assert_eq!(
        count(
            &app.db,
            "sessions WHERE expires_at < now() + interval '61 minutes'"
        ),
        1
    );
    execute(
        &app,
        "UPDATE sessions SET created_at = now() - interval '7 days', last_seen_at = now() - interval '2 minutes'",
    );
    browser.get("/todos").await;
    browser.assert_signed_out().await;
}

#[tokio::test]
async fn idle_and_lifetime_limits_are_configurable() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.session_idle_timeout = std::time::Duration::from_secs(90);
        s.session_lifetime = std::time::Duration::from_secs(3600);
    })
    .await;
    let alice = app.alice().await;
    app.signed_in(&alice).await;

    assert_eq!(
        count(
            &app.db,
            "sessions WHERE expires_at BETWEEN now() + interval '80 seconds' AND now() + interval '91 seconds'"
        ),
        1
    );
}

#[tokio::test]
async fn last_seen_at_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    // `xmin` changes with every write to the row.
    let written_at_sign_in = session_column(&app, "xmin");

    for _ in 0..20 {
        assert!(browser.is_signed_in().await);
    }
    assert_eq!(
        session_column(&app, "xmin"),
        written_at_sign_in,
        "20 page views, no write"
    );

    execute(
        &app,
        "UPDATE sessions SET last_seen_at = now() - interval '61 seconds'",
    );
    let before = session_column(&app, "xmin");
    browser.get("/todos").await;
    let after_a_minute = session_column(&app, "xmin");
    assert_ne!(after_a_minute, before, "a minute later, one write");
    assert_eq!(
        count(
            &app.db,
            "sessions WHERE last_seen_at > now() - interval '10 seconds'"
        ),
        1
    );

    for _ in 0..10 {
        browser.get("/todos").await;
    }
    assert_eq!(
        session_column(&app, "xmin"),
        after_a_minute,
        "and then none again"
    );
}

#[tokio::test]
async fn sign_in_renews_the_session_key() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let browser = app.signed_in(&alice).await;
    let before = browser.clone_cookies();
    let first_key = session_key(&app, &browser.cookie_header().unwrap());

    assert_is_redirect_to(
        &browser.login("bob@acme.test", &bob.password).await,
        "/todos",
    );

    let second_key = session_key(&app, &browser.cookie_header().unwrap());
    assert_ne!(first_key, second_key, "a new key at sign-in");
    before.assert_signed_out().await;
    assert_eq!(count(&app.db, "sessions"), 1, "the old row is gone");
    assert!(browser.page("/todos").await.contains("bob@acme.test"));
}

#[tokio::test]
async fn a_tampered_cookie_is_anonymous() {
    let app = spawn_app().await;
    let browser = app.browser();

    let response = browser
        .client
        .get(app.url("/todos"))
        .header("Cookie", "ual_todo=forged-value")
        .send()
        .await
        .unwrap();

    assert_is_redirect_to(&response, "/login");
}

fn store(app: &TestApp) -> PgSessionStore {
    PgSessionStore::new(
        app.pool.clone(),
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(7200),
    )
}

#[tokio::test]
async fn update_never_recreates_a_session_deleted_while_its_request_was_in_flight() {
    let app = spawn_app().await;
    let store = store(&app);
    let ttl = CookieDuration::hours(1);
    let state = HashMap::from([("k".to_owned(), "\"v\"".to_owned())]);
    let key = store.save(state, &ttl).await.unwrap();
    let key_text: String = key.into();

    // The request loads its session...
    let key = SessionKey::try_from(key_text.clone()).unwrap();
    let mut loaded = store.load(&key).await.unwrap().expect("a live session");
    // ...the session is ended meanwhile...
    execute(&app, "DELETE FROM sessions");
    // ...and the request, finishing, saves what it changed.
    loaded.insert("k".into(), "\"changed\"".into());
    let returned = store
        .update(key, loaded, &ttl)
        .await
        .expect("no error for the in-flight request");

    assert_eq!(count(&app.db, "sessions"), 0, "the session stays deleted");
    assert!(
        store.load(&returned).await.unwrap().is_none(),
        "and its key loads nothing"
    );
}

#[tokio::test]
async fn update_changes_the_state_of_a_live_session() {
    let app = spawn_app().await;
    let store = store(&app);
    let ttl = CookieDuration::hours(1);
    let key = store
        .save(HashMap::from([("k".into(), "1".into())]), &ttl)
        .await
        .unwrap();

    let key = store
        .update(key, HashMap::from([("k".into(), "2".into())]), &ttl)
        .await
        .unwrap();

    let state = store.load(&key).await.unwrap().unwrap();
    assert_eq!(state["k"], "2");
    store.delete(&key).await.unwrap();
    assert_eq!(count(&app.db, "sessions"), 0);
}

#[tokio::test]
async fn requests_racing_a_revocation_cannot_keep_the_session() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    // Many requests in flight with the victim's cookie while the revocation runs.
    let in_flight: Vec<_> = (0..40).map(|_| browser.get("/todos")).collect();
    let revoke = async {
        let mut conn = app.conn().await;
        revocation::revoke_user(
            &mut conn,
            alice.user.org_id,
            alice.user.id,
            Requester {
                source: RevocationSource::Admin,
                actor: "test",
                request_id: None,
                single_use: None,
            },
        )
        .await
        .unwrap()
    };
    let (responses, outcome) = tokio::join!(futures_util::future::join_all(in_flight), revoke);

    assert_eq!(outcome.sessions_ended, 1);
    for response in &responses {
        assert!(matches!(
            response.status(),
            StatusCode::OK | StatusCode::SEE_OTHER
        ));
    }
    // Whatever the in-flight requests did, nothing brought the session back.
    assert_eq!(count(&app.db, "sessions"), 0);
    for _ in 0..5 {
        browser.assert_signed_out().await;
    }
}

#[tokio::test]
async fn the_sweeper_deletes_only_expired_sessions() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let stale = app.signed_in(&alice).await;
    let live = app.signed_in(&alice).await;
    let stale_key = session_key(&app, &stale.cookie_header().unwrap());
    let stale_id = hex::encode(Sha256::digest(stale_key.as_bytes()));
    execute(
        &app,
        &format!(
            "UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = '\\x{stale_id}'"
        ),
    );

    let swept = sweeper::sweep_once(&app.pool, DAY).await.unwrap();

    assert_eq!(swept.sessions, 1);
    assert_eq!(count(&app.db, "sessions"), 1);
    assert!(live.is_signed_in().await);
}
