//! A database outage: clear 503s, nobody signed in by accident, recovery on its own, and live
//! streams re-checked once the listening connection is back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use ual_todo::config::Settings;

use crate::{
    helpers::{EventStream, TestApp, TestDb, assert_json_error, count, email_subject},
    proxy::Proxy,
};

/// An app whose database connections all go through `proxy`.
pub async fn app_behind_proxy() -> (TestApp, Proxy) {
    let db = TestDb::new();
    let direct: url::Url = db.url.expose().parse().unwrap();
    let target = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target.parse().unwrap()).await;
    let mut through = direct.clone();
    through.set_port(Some(proxy.port)).unwrap();
    let mut settings = Settings::for_database(through.as_str().parse().unwrap());
    settings.database_pool_size = 4;
    let app = ual_todo::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let hub = app.hub();
    tokio::spawn(app.run_until_stopped());
    let pool = ual_todo::db::pool(&db.url, 2).unwrap();
    (
        TestApp {
            address,
            pool,
            hub,
            db,
        },
        proxy,
    )
}

async fn wait_until(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

#[tokio::test]
async fn an_outage_is_503_everywhere_and_the_app_recovers_on_its_own() {
    let (app, proxy) = app_behind_proxy().await;
    let alice = app.alice().await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();
    wait_until("listening", Duration::from_secs(5), async || {
        app.hub.is_listening()
    })
    .await;

    proxy.cut();

    let page = browser.get("/todos").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(page.headers()["retry-after"], "5");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("briefly unavailable"));
    let ual = app
        .universal_logout(&key, &email_subject("alice@acme.test"))
        .await;
    assert_eq!(
        ual.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the IdP will retry"
    );
    assert_json_error(
        ual,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "",
    )
    .await;
    let login = app
        .browser()
        .login("alice@acme.test", &alice.password)
        .await;
    assert_eq!(
        login.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "nobody signs in by accident"
    );
    let health = app.browser().get("/healthz").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let events = EventStream::open(&browser, "/events").await.err().unwrap();
    assert_eq!(events.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Meanwhile the session ends without any notification the instance could hear.
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query("DELETE FROM sessions")
            .execute(&mut app.db.connect())
            .unwrap();
    }

    proxy.restore();

    let recovered = wait_until("recovery", Duration::from_secs(5), async || {
        app.browser().get("/healthz").await.status() == StatusCode::OK
    })
    .await;
    eprintln!("recovered {recovered:?} after the database came back");
    assert!(app.hub.reconnects() >= 1);
    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("the re-check ended the stream");
    assert_eq!(event.name, "logout");
    browser.assert_signed_out().await;
    assert_eq!(count(&app.db, "sessions"), 0);
}

#[tokio::test]
async fn a_logout_answered_204_survives_an_outage() {
    let (app, proxy) = app_behind_proxy().await;
    let alice = app.alice().await;
    let key = app.api_key(alice.user.org_id).await;
    let browser = app.signed_in(&alice).await;

    let ual = app
        .universal_logout(&key, &email_subject("alice@acme.test"))
        .await;
    assert_eq!(ual.status(), StatusCode::NO_CONTENT);
    proxy.cut();
    proxy.restore();

    wait_until("recovery", Duration::from_secs(5), async || {
        app.browser().get("/healthz").await.status() == StatusCode::OK
    })
    .await;
    browser.assert_signed_out().await;
    assert_eq!(count(&app.db, "revocations WHERE source = 'ual'"), 1);
}
