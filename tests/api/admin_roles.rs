//! Making and removing admins, from the dashboard and the command line: a demoted admin loses
//! the org's live feed at once, on every instance, and an org never loses its last admin.

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use ual_todo::{db::models::User, live::Hub};

use crate::helpers::{
    Browser, EventStream, SseEvent, TestApp, TestUser, assert_is_redirect_to, cut_the_listener,
    spawn_app,
};

/// How soon a demoted admin's stream must close.
const AT_ONCE: Duration = Duration::from_secs(1);

/// acme: two admins and alice.
pub struct Acme {
    pub app: TestApp,
    pub admin: TestUser,
    pub other_admin: TestUser,
    pub alice: TestUser,
}

pub async fn acme() -> Acme {
    let app = spawn_app().await;
    let acme = app.create_org("acme").await;
    Acme {
        admin: app.create_user(acme.id, "admin@acme.test", true).await,
        other_admin: app.create_user(acme.id, "other@acme.test", true).await,
        alice: app.create_user(acme.id, "alice@acme.test", false).await,
        app,
    }
}

/// Waits until `hub` serves `n` streams and listens.
pub async fn wait_for(hub: &Hub, n: usize) {
    for _ in 0..200 {
        if hub.stream_count() == n && hub.is_listening() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} streams, found {}", hub.stream_count());
}

async fn set_admin(by: &Browser, user: &TestUser, admin: bool) -> reqwest::Response {
    let value = if admin { "true" } else { "false" };
    by.post_form(
        &format!("/admin/users/{}/role", user.user.id),
        &[("admin", value)],
    )
    .await
}

pub async fn is_admin(app: &TestApp, user: &TestUser) -> bool {
    User::find(&mut *app.conn().await, user.user.id)
        .await
        .unwrap()
        .unwrap()
        .is_admin
}

/// Every event until the stream closes, which must be within `AT_ONCE`.
async fn events_until_closed(feed: &mut EventStream) -> Vec<SseEvent> {
    let deadline = tokio::time::Instant::now() + AT_ONCE;
    let mut events = Vec::new();
    while let Some(event) = feed
        .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        events.push(event);
    }
    assert!(
        feed.closes(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await,
        "the stream closed within {AT_ONCE:?} (events: {events:?})"
    );
    events
}

/// Asserts the feed closed at once, saying so, and showed nothing after the demotion (alice's
/// sign-in, made right after it).
pub async fn assert_feed_ends(a: &Acme, feed: &mut EventStream) {
    let _alice = a.app.signed_in(&a.alice).await;
    let events = events_until_closed(feed).await;
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["demoted"], "no sign-in after the demotion");
}

#[tokio::test]
async fn a_demoted_admin_loses_the_live_feed_at_once() {
    let a = acme().await;
    let admin = a.app.signed_in(&a.admin).await;
    let other = a.app.signed_in(&a.other_admin).await;
    let mut feed = EventStream::open(&other, "/admin/events").await.unwrap();
    wait_for(&a.app.hub, 1).await;
    let started = std::time::Instant::now();

    let answer = set_admin(&admin, &a.other_admin, false).await;

    assert_is_redirect_to(&answer, "/admin");
    assert_eq!(feed.next(AT_ONCE).await.unwrap().name, "demoted");
    assert!(feed.closes(AT_ONCE).await, "and nothing after it");
    eprintln!(
        "demoted: the feed closed {:?} after the click",
        started.elapsed()
    );
    let _alice = a.app.signed_in(&a.alice).await;
    assert_eq!(
        feed.next(Duration::from_millis(300)).await,
        None,
        "no sign-in"
    );
    assert!(!is_admin(&a.app, &a.other_admin).await);
    let reopened = EventStream::open(&other, "/admin/events").await;
    assert_eq!(reopened.err().unwrap().status(), StatusCode::FORBIDDEN);
    let flash = admin.page("/admin").await;
    assert!(flash.contains("other@acme.test is no longer an administrator"));
}

#[tokio::test]
async fn a_demotion_on_one_instance_closes_the_feed_on_another() {
    let a = acme().await;
    let b = ual_todo::startup::Application::build(ual_todo::config::Settings::for_database(
        a.app.db.url.clone(),
    ))
    .await
    .unwrap();
    let b_hub: Arc<Hub> = b.hub();
    let b_address = format!("http://127.0.0.1:{}", b.port());
    tokio::spawn(b.run_until_stopped());
    let admin = a.app.signed_in(&a.admin).await;
    let mut other = a.app.signed_in(&a.other_admin).await;
    other.base = b_address;
    let mut feed = EventStream::open(&other, "/admin/events").await.unwrap();
    wait_for(&b_hub, 1).await;

    assert_is_redirect_to(&set_admin(&admin, &a.other_admin, false).await, "/admin");

    assert_feed_ends(&a, &mut feed).await;
    assert_eq!(b_hub.stream_count(), 0);
}

#[tokio::test]
async fn a_demotion_missed_while_not_listening_closes_the_feed_after_reconnecting() {
    use diesel::prelude::*;
    let a = acme().await;
    let other = a.app.signed_in(&a.other_admin).await;
    let mut feed = EventStream::open(&other, "/admin/events").await.unwrap();
    wait_for(&a.app.hub, 1).await;

    // Cut the listener, and demote in a way no notice announces.
    let mut conn = a.app.db.connect();
    cut_the_listener(&mut conn);
    diesel::update(ual_todo::db::schema::users::table.find(a.other_admin.user.id))
        .set(ual_todo::db::schema::users::is_admin.eq(false))
        .execute(&mut conn)
        .unwrap();

    let event = feed.next(Duration::from_secs(5)).await;
    assert_eq!(event.map(|e| e.name).as_deref(), Some("demoted"));
    assert!(feed.closes(AT_ONCE).await);
    assert!(a.app.hub.reconnects() >= 1);
}

#[tokio::test]
async fn the_last_admin_cannot_remove_their_own_role() {
    let a = acme().await;
    let admin = a.app.signed_in(&a.admin).await;
    assert_is_redirect_to(&set_admin(&admin, &a.other_admin, false).await, "/admin");

    let refused = set_admin(&admin, &a.admin, false).await;

    assert_is_redirect_to(&refused, "/admin");
    assert!(is_admin(&a.app, &a.admin).await, "still an admin");
    let page = admin.page("/admin").await;
    assert!(page.contains("the only administrator"), "a flash says why");
}

#[tokio::test]
async fn admins_make_admins_of_their_org_only() {
    let a = acme().await;
    let globex = a.app.create_org("globex").await;
    let carol = a
        .app
        .create_user(globex.id, "carol@globex.test", false)
        .await;
    let admin = a.app.signed_in(&a.admin).await;
    let alice = a.app.signed_in(&a.alice).await;
    assert!(
        admin
            .page("/admin")
            .await
            .contains("Make admin: alice@acme.test")
    );

    let by_a_user = set_admin(&alice, &a.alice, true).await;
    let other_org = set_admin(&admin, &carol, true).await;
    let bad_value = admin
        .post_form(
            &format!("/admin/users/{}/role", a.alice.user.id),
            &[("admin", "maybe")],
        )
        .await;
    let promoted = set_admin(&admin, &a.alice, true).await;

    assert_eq!(by_a_user.status(), StatusCode::FORBIDDEN);
    assert_eq!(other_org.status(), StatusCode::NOT_FOUND);
    assert_eq!(bad_value.status(), StatusCode::BAD_REQUEST);
    assert!(!is_admin(&a.app, &carol).await);
    assert_is_redirect_to(&promoted, "/admin");
    assert!(is_admin(&a.app, &a.alice).await);
    assert_eq!(alice.get("/admin").await.status(), StatusCode::OK);
    let page = admin.page("/admin").await;
    assert!(page.contains("alice@acme.test is now an administrator"));
    assert!(page.contains("Remove admin: alice@acme.test"));
}
