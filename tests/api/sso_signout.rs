//! How SSO sessions end on the IdP's terms: at the IdP session's expiry (live), and signing out
//! of the app signs out of the IdP too (RP-initiated logout).

use std::time::Duration;

use serde_json::{Value, json};
use ual_todo::db::models::org::SsoPolicy;

use crate::{
    helpers::{EventStream, assert_is_redirect_to, count},
    oidc_provider::start_sso,
    sso_sl1::setup,
};

#[tokio::test]
async fn when_the_idp_session_expires_the_tab_is_told_live_and_the_next_page_goes_to_the_idp() {
    let s = setup(json!({ "session_expiry": "$now+3" }), SsoPolicy::default()).await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();

    let event = stream
        .next(Duration::from_secs(10))
        .await
        .expect("a live logout when the IdP session ends");

    assert_eq!(event.name, "logout");
    assert!(event.data.contains("sign-in has expired"), "{}", event.data);
    assert_eq!(count(&s.app.db, "sessions WHERE user_id IS NOT NULL"), 0);
    assert_eq!(
        count(&s.app.db, "revocations WHERE source = 'idp_expiry'"),
        1
    );
    let next = browser.get("/todos").await;
    let location = next.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/auth/oidc/initiate?iss="),
        "back through the IdP: {location}"
    );
    let to_idp = browser.get(&location).await;
    let authorize = to_idp.headers()["location"].to_str().unwrap();
    assert!(authorize.starts_with(&s.idp.issuer), "{authorize}");
}

#[tokio::test]
async fn signing_out_of_the_app_signs_out_at_the_idp_too() {
    let s = setup(Value::Null, SsoPolicy::default()).await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );

    let out = browser.post_form("/logout", &[]).await;

    let location = out.headers()["location"].to_str().unwrap().to_owned();
    let end_session = url::Url::parse(&location).expect("an absolute URL at the IdP");
    assert!(location.starts_with(&s.idp.issuer), "{location}");
    let params: Vec<(String, String)> = end_session.query_pairs().into_owned().collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert!(param("id_token_hint").is_some());
    assert_eq!(param("client_id").as_deref(), Some("acme-app"));
    assert_eq!(
        param("post_logout_redirect_uri"),
        Some(s.app.url("/login?reason=signed_out"))
    );
    browser.assert_signed_out().await;
    let back = s.idp.end_session(&location).await;
    assert_eq!(back, s.app.url("/login?reason=signed_out"));
    let again = start_sso(&s.app.browser(), "acme").await;
    let authorize = again.headers()["location"].to_str().unwrap();
    assert!(
        s.idp.asks_to_sign_in(authorize).await,
        "signed out at the IdP: the next sign-in asks for credentials"
    );
}

#[tokio::test]
async fn signing_out_of_a_password_session_stays_in_the_app() {
    let app = crate::helpers::spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    let out = browser.post_form("/logout", &[]).await;

    assert_is_redirect_to(&out, "/login?reason=signed_out");
}
