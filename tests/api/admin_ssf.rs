//! The Shared Signals card on the admin's Keys & identity provider page: connect a transmitter,
//! see the stream's status as the transmitter tells it, verify it, stop; for the admin's own
//! org only, every form same-origin only.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Browser, TestApp, assert_is_redirect_to, spawn_app},
    ssf_transmitter::{BEARER, Transmitter},
};

const KEYS: &str = "/admin/keys";
const CARD: &str = "/admin/keys#ssf";

/// An admin of org `acme`, signed in.
async fn acme_admin(app: &TestApp) -> Browser {
    let acme = app.create_org("acme").await;
    let admin = app.create_user(acme.id, "admin@acme.test", true).await;
    app.signed_in(&admin).await
}

async fn connect(browser: &Browser, tx: &Transmitter, delivery: &str) -> reqwest::Response {
    browser
        .post_form(
            "/admin/ssf",
            &[
                ("transmitter", &tx.issuer),
                ("delivery", delivery),
                ("bearer", BEARER),
            ],
        )
        .await
}

/// The `<dd>` after `<dt>{term}</dt>` on `page`.
fn shown<'a>(page: &'a str, term: &str) -> &'a str {
    let start = page
        .find(&format!("<dt>{term}</dt>"))
        .unwrap_or_else(|| panic!("no {term} on the page"));
    let dd = &page[start..];
    let dd = &dd[dd.find("<dd>").unwrap() + 4..];
    &dd[..dd.find("</dd>").unwrap()]
}

#[tokio::test]
async fn the_keys_page_connects_a_transmitter_verifies_the_stream_and_stops_it() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let browser = acme_admin(&app).await;
    let page = browser.page(KEYS).await;
    assert!(page.contains(r#"id="ssf""#) && page.contains("No stream yet"));

    let created = connect(&browser, &tx, "push").await;
    assert_is_redirect_to(&created, CARD);
    let page = browser.page(KEYS).await;
    assert!(page.contains(&tx.issuer), "{page}");
    assert!(page.contains(&app.url("/ssf/events")));
    assert!(shown(&page, "Status").contains("enabled"));
    assert_eq!(shown(&page, "Verified"), "not yet");
    assert_eq!(shown(&page, "Events received"), "0");
    assert!(!page.contains(BEARER), "the bearer is never shown");

    let verify = browser.post_form("/admin/ssf/verify", &[]).await;
    assert_is_redirect_to(&verify, CARD);
    let mut page = String::new();
    for _ in 0..50 {
        page = browser.page(KEYS).await;
        if shown(&page, "Events received") == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown(&page, "Verified").starts_with("verification event arrived "),
        "{}",
        shown(&page, "Verified")
    );
    assert_ne!(shown(&page, "Last event"), "none yet");

    let removed = browser.post_form("/admin/ssf/remove", &[]).await;
    assert_is_redirect_to(&removed, CARD);
    assert!(browser.page(KEYS).await.contains("No stream yet"));
    assert_eq!(tx.state().await["streams"], json!([]));
}

#[tokio::test]
async fn the_old_address_leads_to_the_card_on_the_keys_page() {
    let app = spawn_app().await;
    let browser = acme_admin(&app).await;
    let response = browser.get("/admin/ssf").await;
    assert_is_redirect_to(&response, CARD);
    assert!(!browser.page(KEYS).await.contains(r#"href="/admin/ssf""#));
}

#[tokio::test]
async fn the_status_shown_is_the_transmitters_and_is_stored() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let browser = acme_admin(&app).await;
    connect(&browser, &tx, "push").await;

    tx.set_status("paused", Some("SYSTEM_DOWN_FOR_MAINTENANCE"))
        .await;
    let page = browser.page(KEYS).await;

    let status = shown(&page, "Status");
    assert!(status.contains(">paused<"), "{status}");
    assert!(status.contains("SYSTEM_DOWN_FOR_MAINTENANCE"), "{status}");
    let state = tx.state().await;
    let read = &state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|r| r["method"] == "GET" && r["route"] == "/streams/status")
        .cloned()
        .expect("the status endpoint was asked");
    assert_eq!(read["stream_id"], state["streams"][0]["stream_id"]);
    let mut conn = app.conn().await;
    let org = ual_todo::db::models::Org::find_by_slug(&mut conn, "acme")
        .await
        .unwrap()
        .unwrap();
    let stored = ual_todo::db::models::SsfStream::for_org(&mut conn, org.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.as_str(), "paused");
}

#[tokio::test]
async fn a_transmitter_slow_to_tell_the_status_does_not_hold_the_page() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({ "status_delay_ms": 10_000 }));
    let browser = acme_admin(&app).await;
    connect(&browser, &tx, "push").await;

    let started = Instant::now();
    let page = browser.page(KEYS).await;

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let status = shown(&page, "Status");
    assert!(status.contains(">enabled<"), "the last known: {status}");
    assert!(status.contains("could not be asked just now"), "{status}");
    assert!(!status.contains(&tx.issuer), "a generic message: {status}");
}

#[tokio::test]
async fn changing_the_delivery_on_the_page_keeps_the_stream() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let browser = acme_admin(&app).await;
    connect(&browser, &tx, "push").await;
    let id = tx.state().await["streams"][0]["stream_id"].clone();

    // No bearer given: the stored one is used for the same transmitter.
    let changed = browser
        .post_form(
            "/admin/ssf",
            &[("transmitter", &tx.issuer), ("delivery", "poll")],
        )
        .await;

    assert_is_redirect_to(&changed, CARD);
    let page = browser.page(KEYS).await;
    assert!(page.contains("updated at"), "{page}");
    assert!(shown(&page, "Delivery").contains("polled"));
    let state = tx.state().await;
    assert_eq!(state["streams"].as_array().unwrap().len(), 1);
    assert_eq!(state["streams"][0]["stream_id"], id);
    assert_eq!(
        state["streams"][0]["delivery"]["method"],
        "urn:ietf:rfc:8936"
    );
}

#[tokio::test]
async fn a_transmitter_that_refuses_is_explained_and_nothing_is_stored() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let browser = acme_admin(&app).await;

    let refused = browser
        .post_form(
            "/admin/ssf",
            &[
                ("transmitter", &tx.issuer),
                ("delivery", "push"),
                ("bearer", "wrong"),
            ],
        )
        .await;
    assert_is_redirect_to(&refused, CARD);
    let page = browser.page(KEYS).await;
    assert!(page.contains("could not be set up"), "{page}");
    assert!(page.contains("No stream yet"));
}

#[tokio::test]
async fn only_admins_reach_the_card_and_each_sees_and_touches_only_their_own_org() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let globex = app.create_org("globex").await;
    let acme_browser = acme_admin(&app).await;
    let acme = ual_todo::db::models::Org::find_by_slug(&mut *app.conn().await, "acme")
        .await
        .unwrap()
        .unwrap();
    let globex_admin = app.create_user(globex.id, "admin@globex.test", true).await;
    let member = app.create_user(acme.id, "member@acme.test", false).await;
    connect(&acme_browser, &tx, "push").await;

    let member_browser = app.signed_in(&member).await;
    for path in [KEYS, "/admin/ssf"] {
        let response = member_browser.get(path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let form = [("transmitter", tx.issuer.as_str()), ("delivery", "poll")];
    for (path, form) in [
        ("/admin/ssf", &form[..]),
        ("/admin/ssf/verify", &[]),
        ("/admin/ssf/remove", &[]),
    ] {
        let response = member_browser.post_form(path, form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }

    let globex_browser = app.signed_in(&globex_admin).await;
    let page = globex_browser.page(KEYS).await;
    assert!(page.contains("No stream yet"));
    assert!(
        !page.contains(&tx.issuer),
        "acme's stream is not shown to globex"
    );
    let response = globex_browser.post_form("/admin/ssf/verify", &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = globex_browser.post_form("/admin/ssf/remove", &[]).await;
    assert_is_redirect_to(&response, CARD);
    assert_eq!(tx.state().await["streams"].as_array().unwrap().len(), 1);
    assert!(acme_browser.page(KEYS).await.contains(&tx.issuer));
}

#[tokio::test]
async fn the_cards_forms_refuse_a_cross_site_post() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let browser = acme_admin(&app).await;
    connect(&browser, &tx, "push").await;

    for (path, form) in [
        (
            "/admin/ssf",
            vec![
                ("transmitter", "https://evil.example"),
                ("delivery", "push"),
            ],
        ),
        ("/admin/ssf/verify", vec![]),
        ("/admin/ssf/remove", vec![]),
    ] {
        let response = browser
            .client
            .post(app.url(path))
            .header("Sec-Fetch-Site", "cross-site")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let state = tx.state().await;
    assert_eq!(state["streams"].as_array().unwrap().len(), 1);
    assert!(
        !state["management"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "POST /verify" || m == "DELETE /streams"),
        "{state}"
    );
}
