//! The core single sign-on tests again, against a second, independent OpenID Provider:
//! idpyoidc (PyPI), which signs with ES256 and sends its own logout tokens.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::db::models::Org;

use crate::{
    helpers::{Browser, EventStream, TestApp, assert_is_redirect_to, count, spawn_app},
    oidc_provider::{client, provider_browser, start_sso},
    python_op::PythonOp,
    sso::{callback_is_refused_elsewhere_and_when_replayed, configure},
};

struct Setup {
    app: TestApp,
    idp: PythonOp,
    acme: Org,
}

/// An app whose org `acme` signs in through idpyoidc, started with `config` (its clients are
/// set here).
async fn setup_with(mut config: Value) -> Setup {
    let app = spawn_app().await;
    config["clients"] = json!([client(&app, "acme-app")]);
    config["accounts"] = json!({
        "alice@acme.test": { "sub": "py-alice", "email": "alice@acme.test", "email_verified": true }
    });
    let idp = PythonOp::start(config);
    let acme = app.create_org("acme").await;
    configure(&app, &acme, &idp.issuer, "acme-app", "acme.test", true).await;
    Setup { app, idp, acme }
}

async fn setup() -> Setup {
    setup_with(json!({})).await
}

/// Starts an SSO sign-in of acme in `browser`; the provider's authorization URL.
async fn authorize_url(browser: &Browser) -> String {
    let started = start_sso(browser, "acme").await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER, "SSO starts");
    started.headers()["location"].to_str().unwrap().to_owned()
}

async fn page_says(response: reqwest::Response, status: StatusCode, words: &str) {
    assert_eq!(response.status(), status, "{words}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains(words),
        "the page should say {words:?}: {page}"
    );
}

#[tokio::test]
async fn a_python_openid_provider_signs_a_user_in() {
    let s = setup().await;
    let browser = s.app.browser();

    let answer = s.idp.sign_in(&browser, "acme", "alice@acme.test").await;

    assert_is_redirect_to(&answer, "/todos");
    assert!(browser.page("/todos").await.contains("alice@acme.test"));
    let who = format!(
        "users WHERE org_id = '{}' AND email = 'alice@acme.test' AND oidc_subject = 'py-alice' \
         AND oidc_issuer = '{}' AND password_hash IS NULL",
        s.acme.id, s.idp.issuer
    );
    assert_eq!(count(&s.app.db, &who), 1);
    assert_eq!(
        count(&s.app.db, "sessions WHERE oidc_sid IS NOT NULL"),
        1,
        "the ID token's sid is kept"
    );
    // Signed in at the provider, the next sign-in needs no login page.
    let again = s.app.browser();
    let callback = s
        .idp
        .sign_in_at(&authorize_url(&again).await, "anyone")
        .await;
    assert!(callback.starts_with(&s.app.url("/auth/oidc/callback")));
    assert_is_redirect_to(&again.client.get(callback).send().await.unwrap(), "/todos");
    assert_eq!(count(&s.app.db, "users"), 1);
}

#[tokio::test]
async fn a_python_providers_id_token_with_the_wrong_nonce_is_refused() {
    let s = setup().await;
    let browser = s.app.browser();
    let callback = s
        .idp
        .sign_in_at(&authorize_url(&browser).await, "alice@acme.test")
        .await;
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query("UPDATE oidc_logins SET nonce = 'not-the-nonce'")
            .execute(&mut s.app.db.connect())
            .unwrap();
    }

    let answer = browser.client.get(&callback).send().await.unwrap();

    page_says(answer, StatusCode::UNAUTHORIZED, "could not be completed").await;
    assert_eq!(count(&s.app.db, "users") + count(&s.app.db, "sessions"), 0);
}

#[tokio::test]
async fn a_callback_from_the_python_provider_is_refused_in_another_browser_and_when_replayed() {
    let s = setup().await;
    let browser = s.app.browser();
    let callback = s
        .idp
        .sign_in_at(&authorize_url(&browser).await, "alice@acme.test")
        .await;
    callback_is_refused_elsewhere_and_when_replayed(&s.app, &browser, &callback).await;
}

#[tokio::test]
async fn signing_out_at_the_python_provider_ends_the_session_live_through_back_channel_logout() {
    let mut s = setup().await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );
    // Bob signs in from his own browser (his own cookies at the provider too).
    let alice_at_the_idp = std::mem::replace(&mut s.idp.browser, provider_browser());
    let other = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&other, "acme", "bob@acme.test").await,
        "/todos",
    );
    s.idp.browser = alice_at_the_idp;
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let back = s.idp.sign_out().await;

    assert_eq!(back, format!("{}/post_logout", s.idp.issuer));
    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a live logout");
    assert_eq!(event.name, "logout");
    assert!(event.data.contains("backchannel"), "{}", event.data);
    browser.assert_signed_out().await;
    assert_eq!(
        count(&s.app.db, "revocations WHERE source = 'backchannel'"),
        1
    );
    assert!(
        other.is_signed_in().await,
        "another person's session at the same provider stays"
    );
}

#[tokio::test]
async fn signing_out_of_the_app_signs_out_at_the_python_provider_too() {
    let s = setup().await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );

    let out = browser.post_form("/logout", &[]).await;

    let location = out.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/session?", s.idp.issuer)),
        "{location}"
    );
    browser.assert_signed_out().await;
    let back = s.idp.end_session(&location).await;
    assert_eq!(back, s.app.url("/login?reason=signed_out"));
    let again = s.app.browser();
    let first = s
        .idp
        .browser
        .get(authorize_url(&again).await)
        .send()
        .await
        .unwrap();
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "signed out at the IdP: the next sign-in shows the login page"
    );
}

#[tokio::test]
async fn the_python_providers_own_array_audience_is_refused() {
    // idpyoidc writes `aud` as an array; the IPSIE SL1 profile wants one string.
    let s = setup_with(json!({ "aud_as_array": true })).await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    page_says(answer, StatusCode::UNAUTHORIZED, "could not be completed").await;
    assert_eq!(count(&s.app.db, "sessions WHERE user_id IS NOT NULL"), 0);
}
