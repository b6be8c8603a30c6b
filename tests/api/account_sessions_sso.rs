//! `/account/sessions` for a user signed in through the org's IdP: "sign out all other
//! sessions" is confirmed by a fresh sign-in there, for the session that asked only.

use reqwest::{StatusCode, cookie::CookieStore as _};

use crate::{
    helpers::{Browser, assert_is_redirect_to, count},
    sso,
};

/// An app whose org `acme` signs in through a real OpenID Provider; alice signed in twice.
async fn sso_alice() -> (sso::Setup, Browser, Browser) {
    let s = sso::setup().await;
    let laptop = s.app.browser();
    let phone = s.app.browser();
    for browser in [&laptop, &phone] {
        let answer = s.idp.sign_in(browser, "acme", "alice@acme.test").await;
        assert_is_redirect_to(&answer, "/todos");
    }
    (s, laptop, phone)
}

#[tokio::test]
async fn an_sso_user_ends_other_sessions_after_a_fresh_sign_in_at_the_idp() {
    let (s, laptop, phone) = sso_alice().await;
    let page = laptop.get("/account/sessions").await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        !csp.contains("form-action"),
        "the form leads to the IdP by redirect: {csp}"
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Single sign-on (127.0.0.1)"),
        "how it signed in"
    );

    let started = laptop.post_form("/account/sessions/end-others", &[]).await;
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&s.idp.issuer), "{authorize}");
    assert!(authorize.contains("prompt=login") && authorize.contains("max_age=0"));
    assert!(
        phone.is_signed_in().await,
        "nothing ends before the IdP confirms"
    );
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    let back = laptop.client.get(callback).send().await.unwrap();

    assert_is_redirect_to(&back, "/account/sessions");
    phone.assert_signed_out().await;
    assert!(laptop.is_signed_in().await);
    assert_eq!(count(&s.app.db, "sessions WHERE user_id IS NOT NULL"), 1);
    assert_eq!(count(&s.app.db, "revocations WHERE source = 'self'"), 1);
}

#[tokio::test]
async fn an_idp_confirmation_for_another_session_ends_nothing() {
    let (s, laptop, phone) = sso_alice().await;
    let started = laptop.post_form("/account/sessions/end-others", &[]).await;
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;

    // The phone's browser, given the laptop's sign-in state cookie: its own session is not the
    // one that asked.
    let callback_url: reqwest::Url = format!("{}/auth/oidc/callback", s.app.address)
        .parse()
        .unwrap();
    let cookies = laptop.jar.cookies(&callback_url).unwrap();
    let state = cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find(|c| c.starts_with("ual_todo_sso="))
        .unwrap()
        .to_owned();
    phone
        .jar
        .add_cookie_str(&format!("{state}; Path=/auth/oidc"), &callback_url);
    let answer = phone.client.get(callback).send().await.unwrap();

    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_ne!(answer.headers()["location"], "/todos", "nor a sign-in");
    assert!(laptop.is_signed_in().await && phone.is_signed_in().await);
    assert_eq!(count(&s.app.db, "revocations"), 0);
    assert_eq!(count(&s.app.db, "sessions WHERE user_id IS NOT NULL"), 2);
}
