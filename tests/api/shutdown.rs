//! Graceful shutdown of a real `ual-todo` process: SIGTERM closes the live streams at once (the
//! browser reconnects to another instance), drains (503 on `/healthz`, connections closed after
//! each response), lets in-flight requests finish, and exits cleanly.

use std::{process::Command, time::Duration};

use reqwest::StatusCode;

use crate::helpers::{EventStream, UNIVERSAL_LOGOUT, serve, spawn_app_with};

#[tokio::test]
async fn sigterm_closes_streams_finishes_requests_and_exits_cleanly() {
    // Instance B runs in the test; instance A is a real process on the same database.
    let b = spawn_app_with(|_| {}).await;
    let alice = b.alice().await;
    let key = b.api_key(alice.user.org_id).await;
    let (mut a, a_address) = serve(&b.db);
    let mut browser = b.browser();
    browser.base = a_address.clone();
    crate::helpers::assert_is_redirect_to(
        &browser.login("alice@acme.test", &alice.password).await,
        "/todos",
    );
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();

    // A Universal Logout call in flight: headers sent, body still coming.
    let (send_rest, rest) = tokio::sync::oneshot::channel::<()>();
    let body = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(r#"{"sub_id":{"format":"email","#.to_owned())
    })
    .chain(futures_util::stream::once(async move {
        let _ = rest.await;
        Ok(r#""email":"nobody@acme.test"}}"#.to_owned())
    }));
    use futures_util::StreamExt as _;
    let in_flight = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{a_address}{UNIVERSAL_LOGOUT}"))
            .bearer_auth(&key)
            .header("Content-Type", "application/json")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    Command::new("kill")
        .args(["-TERM", &a.id().to_string()])
        .status()
        .unwrap();

    assert!(
        stream.closes(Duration::from_secs(2)).await,
        "the live stream is closed at once"
    );
    // Draining (SHUTDOWN_DRAIN, 5 s by default): the balancer is told to go elsewhere, pages
    // are still served but close their connections, and no new stream opens here.
    let health = reqwest::get(format!("{a_address}/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "draining"
    );
    let page = browser.get("/todos").await;
    assert_eq!(page.status(), StatusCode::OK, "pages are still served");
    assert_eq!(
        page.headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close"),
        "…on a connection that closes after the response"
    );
    assert_eq!(
        browser.get("/events").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a reconnecting tab is sent to another instance"
    );
    let _ = send_rest.send(());
    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(
        answer.status(),
        StatusCode::NOT_FOUND,
        "…and fully handled (no such user)"
    );
    let status = tokio::task::spawn_blocking(move || a.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean exit: {status:?}");

    // The browser reconnects elsewhere: instance B knows the session.
    browser.base = b.address.clone();
    assert!(browser.is_signed_in().await);
    assert!(EventStream::open(&browser, "/events").await.is_ok());
}
