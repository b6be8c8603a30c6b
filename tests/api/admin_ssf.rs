//! The admin's Shared Signals page: connect a transmitter, see the stream's state, verify it,
//! stop; for the admin's own org only.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{assert_is_redirect_to, spawn_app},
    ssf_transmitter::{BEARER, Transmitter},
};

#[tokio::test]
async fn an_admin_connects_a_transmitter_verifies_the_stream_and_stops_it() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let acme = app.create_org("acme").await;
    let admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let browser = app.signed_in(&admin).await;
    assert!(browser.page("/admin/ssf").await.contains("No stream yet"));

    let created = browser
        .post_form(
            "/admin/ssf",
            &[
                ("transmitter", &tx.issuer),
                ("delivery", "push"),
                ("bearer", BEARER),
            ],
        )
        .await;
    assert_is_redirect_to(&created, "/admin/ssf");
    let page = browser.page("/admin/ssf").await;
    assert!(page.contains(&tx.issuer), "{page}");
    assert!(page.contains(&app.url("/ssf/events")));
    assert!(page.contains("not yet"), "not verified yet");
    assert!(!page.contains(BEARER), "the bearer is never shown");

    let verify = browser.post_form("/admin/ssf/verify", &[]).await;
    assert_is_redirect_to(&verify, "/admin/ssf");
    let mut verified = false;
    for _ in 0..50 {
        let page = browser.page("/admin/ssf").await;
        if page.contains("Events received</dt><dd>1<") {
            verified = !page.contains("<dt>Verified</dt><dd>not yet");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(verified, "the verification event shows");

    let removed = browser.post_form("/admin/ssf/remove", &[]).await;
    assert_is_redirect_to(&removed, "/admin/ssf");
    assert!(browser.page("/admin/ssf").await.contains("No stream yet"));
    assert_eq!(tx.state().await["streams"], json!([]));
}

#[tokio::test]
async fn a_transmitter_that_refuses_is_explained_and_nothing_is_stored() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let acme = app.create_org("acme").await;
    let admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let browser = app.signed_in(&admin).await;

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
    assert_is_redirect_to(&refused, "/admin/ssf");
    let page = browser.page("/admin/ssf").await;
    assert!(page.contains("could not be created"), "{page}");
    assert!(page.contains("No stream yet"));
}

#[tokio::test]
async fn only_admins_reach_the_page_and_each_sees_their_own_org() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    let acme_admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let globex_admin = app.create_user(globex.id, "admin@globex.test", true).await;
    let member = app.create_user(acme.id, "member@acme.test", false).await;
    let acme_browser = app.signed_in(&acme_admin).await;
    acme_browser
        .post_form(
            "/admin/ssf",
            &[
                ("transmitter", &tx.issuer),
                ("delivery", "push"),
                ("bearer", BEARER),
            ],
        )
        .await;

    let member_browser = app.signed_in(&member).await;
    let response = member_browser.get("/admin/ssf").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = member_browser.post_form("/admin/ssf/remove", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let globex_browser = app.signed_in(&globex_admin).await;
    assert!(
        globex_browser
            .page("/admin/ssf")
            .await
            .contains("No stream yet")
    );
    let response = globex_browser.post_form("/admin/ssf/verify", &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(tx.state().await["streams"].as_array().unwrap().len(), 1);
}
