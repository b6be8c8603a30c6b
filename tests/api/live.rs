//! Live logout over Server-Sent Events: `GET /events` and the fan-out of revocations.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{EventStream, TestApp, count, email_subject, spawn_app};

const SOON: Duration = Duration::from_secs(5);

/// Waits until the instance has as many open streams (subscriptions register asynchronously).
async fn wait_for_streams(app: &TestApp, n: usize) {
    for _ in 0..100 {
        if app.hub.stream_count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} open streams, found {}",
        app.hub.stream_count()
    );
}

fn reason(event: &ual_todo_event::Event) -> String {
    serde_json::from_str::<Value>(&event.data).unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

mod ual_todo_event {
    pub use crate::helpers::SseEvent as Event;
}

#[tokio::test]
async fn the_stream_needs_a_signed_in_session() {
    let app = spawn_app().await;

    let anonymous = EventStream::open(&app.browser(), "/events")
        .await
        .err()
        .unwrap();
    let status = app.browser().get("/events/status").await;

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(status.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn universal_logout_reaches_every_stream_of_the_user_and_closes_it() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let key = app.api_key(alice.user.org_id).await;
    let laptop = app.signed_in(&alice).await;
    let phone = app.signed_in(&alice).await;
    let bobs = app.signed_in(&bob).await;
    let mut on_laptop = EventStream::open(&laptop, "/events").await.unwrap();
    let mut on_phone = EventStream::open(&phone, "/events").await.unwrap();
    let mut bob_stream = EventStream::open(&bobs, "/events").await.unwrap();
    assert_eq!(laptop.get("/events/status").await.status(), StatusCode::OK);
    wait_for_streams(&app, 3).await;

    assert_eq!(
        app.universal_logout(&key, &email_subject("alice@acme.test"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    for stream in [&mut on_laptop, &mut on_phone] {
        let event = stream.next(SOON).await.expect("a logout event");
        assert_eq!(event.name, "logout");
        assert_eq!(reason(&event), "ual");
        assert!(
            stream.closes(SOON).await,
            "the stream ends after the logout"
        );
    }
    assert_eq!(
        bob_stream.next(Duration::from_millis(300)).await,
        None,
        "bob hears nothing"
    );
    assert_eq!(
        laptop.get("/events/status").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        EventStream::open(&laptop, "/events").await.is_err(),
        "a revoked session cannot reopen it"
    );
}

#[tokio::test]
async fn signing_out_ends_only_that_sessions_stream_with_reason_self() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let laptop = app.signed_in(&alice).await;
    let phone = app.signed_in(&alice).await;
    let mut on_laptop = EventStream::open(&laptop, "/events").await.unwrap();
    let mut on_phone = EventStream::open(&phone, "/events").await.unwrap();
    wait_for_streams(&app, 2).await;

    laptop.post_form("/logout", &[]).await;

    let event = on_laptop.next(SOON).await.unwrap();
    assert_eq!(
        (event.name.as_str(), reason(&event).as_str()),
        ("logout", "self")
    );
    // The phone's stream stays open: it only hears that its list of sessions changed.
    let heard = on_phone.next(Duration::from_millis(300)).await.unwrap();
    assert_eq!(heard.name, "sessions", "no logout: {heard:?}");
    assert!(heard.data.contains(r#""kind":"ended""#));
    assert_eq!(on_phone.next(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn a_revocation_on_one_instance_reaches_a_stream_on_another() {
    let a = spawn_app().await;
    let alice = a.alice().await;
    let key = a.api_key(alice.user.org_id).await;
    let b = ual_todo::startup::Application::build(ual_todo::config::Settings::for_database(
        a.db.url.clone(),
    ))
    .await
    .unwrap();
    let b_hub = b.hub();
    let b_address = format!("http://127.0.0.1:{}", b.port());
    tokio::spawn(b.run_until_stopped());
    let mut browser = a.signed_in(&alice).await;
    browser.base = b_address;
    let mut on_b = EventStream::open(&browser, "/events").await.unwrap();
    for _ in 0..100 {
        if b_hub.stream_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(
        a.universal_logout(&key, &email_subject("alice@acme.test"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let event = on_b.next(SOON).await.expect("the logout crossed instances");
    assert_eq!(
        (event.name.as_str(), reason(&event).as_str()),
        ("logout", "ual")
    );
}

#[tokio::test]
async fn a_dropped_listening_connection_reconnects_and_ends_streams_it_missed() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();
    wait_for_streams(&app, 1).await;
    for _ in 0..100 {
        if app.hub.is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Cut the listener, and end the session in a way no notification announces.
    {
        use diesel::RunQueryDsl as _;
        let mut conn = app.db.connect();
        crate::helpers::cut_the_listener(&mut conn);
        diesel::sql_query("DELETE FROM sessions")
            .execute(&mut conn)
            .unwrap();
    }

    let event = stream
        .next(SOON)
        .await
        .expect("the re-check found the session gone");
    assert_eq!(
        (event.name.as_str(), reason(&event).as_str()),
        ("logout", "revoked")
    );
    assert!(app.hub.reconnects() >= 1);
    assert!(app.hub.is_listening());
    assert_eq!(count(&app.db, "sessions"), 0);
}

#[tokio::test]
async fn a_closed_stream_is_unregistered_at_its_next_keep_alive() {
    let app =
        crate::helpers::spawn_app_with(|s| s.sse_keep_alive = Duration::from_millis(200)).await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let stream = EventStream::open(&browser, "/events").await.unwrap();
    wait_for_streams(&app, 1).await;

    drop(stream);

    wait_for_streams(&app, 0).await;
}

/// Notifications on `channel` of the test's database, heard on a connection of their own.
async fn listen(
    app: &TestApp,
    channel: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use futures_util::StreamExt as _;
    let (client, mut connection) =
        tokio_postgres::connect(app.db.url.expose(), tokio_postgres::NoTls)
            .await
            .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    (client, rx)
}

#[tokio::test]
async fn a_revocation_that_ends_nothing_sends_no_notice() {
    use ual_todo::{
        db::{ids::SessionId, models::RevocationSource},
        revocation::{self, Requester, Sessions, SingleUse},
    };
    let app = spawn_app().await;
    let alice = app.alice().await;
    let org = alice.user.org_id;
    let (_listener, mut notices) = listen(&app, revocation::CHANNEL).await;
    let by = |single_use| Requester {
        source: RevocationSource::Backchannel,
        actor: "test",
        request_id: None,
        single_use,
    };
    let jwt = SingleUse {
        issuer: "https://idp.example",
        jti: "jti-1",
        remember_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
    };
    let mut conn = app.conn().await;

    // An unknown session, an IdP session with no session here, and a replayed JWT.
    let unknown = Sessions::One(SessionId::new());
    let none = revocation::revoke_sessions(&mut conn, org, unknown, by(Some(jwt))).await;
    let no_sid = Sessions::OfIdpSession("no-such-sid");
    let none_either = revocation::revoke_sessions(&mut conn, org, no_sid, by(None)).await;
    let replay = revocation::revoke_sessions(&mut conn, org, unknown, by(Some(jwt))).await;

    assert!(none.unwrap().is_empty() && none_either.unwrap().is_empty());
    assert!(matches!(replay, Err(revocation::RevokeError::Replayed)));
    let heard = tokio::time::timeout(Duration::from_millis(500), notices.recv()).await;
    assert!(heard.is_err(), "no notice, but heard {heard:?}");
    // A revocation that is one is still announced, whole.
    revocation::revoke_user(&mut conn, org, alice.user.id, by(None))
        .await
        .unwrap();
    let notice = tokio::time::timeout(SOON, notices.recv())
        .await
        .unwrap()
        .unwrap();
    let notice: revocation::Notice = serde_json::from_str(&notice).unwrap();
    assert_eq!(notice.user_id, alice.user.id);
}

#[tokio::test]
async fn a_session_keeps_at_most_twenty_streams_and_the_oldest_closes() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let other_session = app.signed_in(&alice).await;
    let mut elsewhere = EventStream::open(&other_session, "/events").await.unwrap();
    let mut oldest = EventStream::open(&browser, "/events").await.unwrap();
    wait_for_streams(&app, 2).await;
    let mut newer = Vec::new();
    for _ in 0..20 {
        newer.push(EventStream::open(&browser, "/events").await.unwrap());
    }

    assert!(
        oldest.closes(SOON).await,
        "the oldest stream of the session closed"
    );
    wait_for_streams(&app, 21).await;
    assert!(
        !elsewhere.closes(Duration::from_millis(200)).await,
        "another session keeps its stream"
    );
}

#[tokio::test]
async fn events_carry_the_servers_words_for_why_and_by_whom() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let admin = app
        .create_user(alice.user.org_id, "admin@acme.test", true)
        .await;
    let key = app.api_key(alice.user.org_id).await;
    let tab = app.signed_in(&alice).await;
    let dashboard = app.signed_in(&admin).await;
    let mut on_tab = EventStream::open(&tab, "/events").await.unwrap();
    let mut feed = EventStream::open(&dashboard, "/admin/events")
        .await
        .unwrap();
    wait_for_streams(&app, 2).await;

    app.universal_logout(&key, &email_subject("alice@acme.test"))
        .await;

    let logout = on_tab.next(SOON).await.expect("a logout event");
    let logout: Value = serde_json::from_str(&logout.data).unwrap();
    assert_eq!(
        logout["message"],
        "You were signed out by your organisation's identity provider."
    );
    let revoked = loop {
        let event = feed.next(SOON).await.expect("a revoked event");
        if event.name == "revoked" {
            break event;
        }
    };
    let revoked: Value = serde_json::from_str(&revoked.data).unwrap();
    assert_eq!(revoked["label"], "Universal Logout");
    let status: Value = tab.get("/events/status").await.json().await.unwrap();
    assert_eq!(
        status["error_description"],
        "Your session has ended. Please sign in again."
    );
}
