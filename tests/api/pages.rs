//! Page-level behaviour: errors, headers, health, start-up.

use reqwest::StatusCode;

use crate::helpers::{TestDb, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_unknown_page_is_a_friendly_404() {
    let app = spawn_app().await;

    let response = app.browser().get("/no/such/page").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("There is no page at /no/such/page.")
    );
}

#[tokio::test]
async fn pages_carry_security_headers_and_are_not_cached() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    let response = browser.get("/todos").await;

    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax() {
    let app = spawn_app().await;
    let alice = app.alice().await;

    let response = app
        .browser()
        .login("alice@acme.test", &alice.password)
        .await;

    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("ual_todo="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn https_public_url_makes_the_cookie_secure_and_host_only() {
    let app =
        spawn_app_with(|s| s.public_url = Some("https://todo.example".parse().unwrap())).await;
    let alice = app.alice().await;

    let response = app
        .browser()
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "alice@acme.test"),
            ("password", alice.password.as_str()),
        ])
        .send()
        .await
        .unwrap();

    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-ual_todo="));
    assert!(cookie.contains("Secure"));
}

#[tokio::test]
async fn static_css_is_served_and_cacheable() {
    let app = spawn_app().await;

    let response = app.browser().get("/static/css/app.css").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let app = spawn_app().await;

    let response = app.browser().get("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn start_up_creates_a_missing_database_and_migrates_it() {
    let db = TestDb::unborn();
    assert!(!db.exists());

    let app = ual_todo::startup::Application::build(ual_todo::config::Settings::for_database(
        db.url.clone(),
    ))
    .await
    .expect("the app builds on a missing database");

    assert!(db.exists());
    assert_eq!(
        crate::helpers::count(&db, "settings WHERE name = 'cookie_key'"),
        1
    );
    drop(app);
}

#[tokio::test]
async fn instances_on_one_database_share_the_cookie_key() {
    let first = spawn_app().await;
    let alice = first.alice().await;
    let settings = ual_todo::config::Settings::for_database(first.db.url.clone());
    let second = ual_todo::startup::Application::build(settings)
        .await
        .unwrap();
    let second_address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    let browser = first.signed_in(&alice).await;

    let mut on_second = browser.clone_cookies();
    on_second.base = second_address.clone();
    let cookie = browser.cookie_header().unwrap();
    let response = on_second
        .client
        .get(format!("{second_address}/todos"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a session from one instance works on another"
    );
}
