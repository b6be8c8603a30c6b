//! Graceful shutdown of a real `ual-todo` process: SIGTERM closes the live streams at once (the
//! browser reconnects to another instance), drains (503 on `/healthz`, connections closed after
//! each response), lets in-flight requests finish, and exits cleanly.

use std::{process::Command, time::Duration};

use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

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
    // Two idle connections, as a balancer keeps them.
    let host = a_address.trim_start_matches("http://").to_owned();
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(TcpStream::connect(&host).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    Command::new("kill")
        .args(["-TERM", &a.id().to_string()])
        .status()
        .unwrap();

    assert!(
        stream.closes(Duration::from_secs(2)).await,
        "the live stream is closed at once"
    );
    // Draining (SHUTDOWN_DRAIN, 5 s by default): new connections are refused (a balancer tries
    // another instance, even for a POST), while open ones are still served, each closing after
    // its response, and the balancer's health check is told to go elsewhere.
    let health = ask(&mut open[0], "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains(r#""status":"draining""#), "{health}");
    assert!(
        health.to_ascii_lowercase().contains("connection: close"),
        "{health}"
    );
    let page = ask(&mut open[1], "/login").await;
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "pages are still served: {page}"
    );
    assert!(
        page.to_ascii_lowercase().contains("connection: close"),
        "{page}"
    );
    assert!(
        refused(&a_address).await,
        "a new connection is refused while draining"
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

/// Sends `GET path` on `stream` and reads the whole answer (the server closes the connection).
async fn ask(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection after its answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether a new connection to `address` is refused (or reset before any answer).
async fn refused(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address.trim_start_matches("http://")).await else {
        return true;
    };
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await,
        Ok(Err(_)) | Ok(Ok(0))
    )
}
