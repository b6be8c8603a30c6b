//! `/metrics` stays bounded whatever clients send: labels come from closed sets.

use crate::helpers::spawn_app;

/// The number of request series `/metrics` exposes.
fn request_series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| line.starts_with("ual_todo_http_requests_total{"))
        .count()
}

#[tokio::test]
async fn invented_methods_and_unknown_paths_add_no_metric_series() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let send = |method: String, path: String| {
        let request = client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(&path),
        );
        async move { request.send().await.unwrap().status() }
    };
    // One of each kind first, so their series exist.
    send("BREW".into(), "/todos".into()).await;
    let status = send("GET".into(), "/no-such-page".into()).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let metrics = || async {
        reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    metrics().await; // its own series too
    let before = metrics().await;

    for i in 0..1000 {
        send(format!("BREW{i}"), "/todos".into()).await;
        send("GET".into(), format!("/no-such-page-{i}")).await;
    }

    let after = metrics().await;
    assert_eq!(request_series(&after), request_series(&before));
    assert!(!after.contains("BREW") && !after.contains("no-such-page"));
    assert!(after.contains("method=\"other\"") && after.contains("route=\"unmatched\""));
}
