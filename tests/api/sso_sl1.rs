//! SSO to the IPSIE SL1 profile, against the real OpenID Provider: what the ID token and the
//! authorization response must be, the session bound by the IdP, and IdP-initiated login.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::db::models::{Org, org::SsoPolicy};

use crate::{
    helpers::{TestApp, assert_is_redirect_to, count, spawn_app},
    oidc_provider::{OidcProvider, client, start_sso},
    sso::configure,
};

pub struct Setup {
    pub app: TestApp,
    pub idp: OidcProvider,
    pub acme: Org,
}

/// `acme` signs in through a provider whose ID tokens carry `patch`, with `policy`.
pub async fn setup(patch: Value, policy: SsoPolicy) -> Setup {
    let app = spawn_app().await;
    let idp = OidcProvider::start_patching(
        vec![client(&app, "acme-app")],
        json!({ "alice@acme.test": { "sub": "00u-alice", "email": "alice@acme.test", "email_verified": true } }),
        patch,
    );
    let acme = app.create_org("acme").await;
    configure(&app, &acme, &idp.issuer, "acme-app", "acme.test", true).await;
    Org::set_sso_policy(&mut *app.conn().await, acme.id, &policy)
        .await
        .unwrap();
    Setup { app, idp, acme }
}

async fn refused(answer: reqwest::Response, words: &str) {
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{words}");
    let page = answer.text().await.unwrap();
    assert!(
        page.contains(words),
        "the page should say {words:?}: {page}"
    );
}

fn no_session(s: &Setup) {
    assert_eq!(count(&s.app.db, "sessions WHERE user_id IS NOT NULL"), 0);
}

#[tokio::test]
async fn an_id_token_with_an_array_audience_is_refused() {
    let s = setup(
        json!({ "aud": ["acme-app", "another-app"] }),
        SsoPolicy::default(),
    )
    .await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    refused(answer, "could not be completed").await;
    no_session(&s);
}

#[tokio::test]
async fn an_id_token_signed_with_an_algorithm_the_org_does_not_allow_is_refused() {
    let only_ps256 = SsoPolicy {
        algs: Some(vec!["PS256".into()]),
        ..SsoPolicy::default()
    };
    let s = setup(Value::Null, only_ps256).await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    refused(answer, "could not be completed").await;
    no_session(&s);
}

fn max_age(seconds: i32) -> SsoPolicy {
    SsoPolicy {
        max_age: Some(Some(seconds)),
        ..SsoPolicy::default()
    }
}

#[tokio::test]
async fn max_age_is_asked_for_and_a_recent_authentication_signs_in() {
    let s = setup(Value::Null, max_age(600)).await;
    let browser = s.app.browser();
    let started = start_sso(&browser, "acme").await;
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.contains("max_age=600"), "{authorize}");

    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    let answer = browser.client.get(callback).send().await.unwrap();

    assert_is_redirect_to(&answer, "/todos");
    assert_eq!(
        count(&s.app.db, "sessions WHERE auth_time IS NOT NULL"),
        1,
        "auth_time kept"
    );
}

#[tokio::test]
async fn an_authentication_older_than_max_age_is_refused() {
    let s = setup(json!({ "auth_time": "$now-3600" }), max_age(600)).await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    refused(answer, "requires a recent sign-in").await;
    no_session(&s);
}

#[tokio::test]
async fn a_missing_auth_time_is_refused_when_max_age_was_asked_for() {
    let s = setup(json!({ "auth_time": null }), max_age(600)).await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    refused(answer, "requires a recent sign-in").await;
    no_session(&s);
}

/// The app's callback URL for a sign-in of `login`, with its `iss` parameter changed by `edit`.
async fn callback_with_iss(
    s: &Setup,
    browser: &crate::helpers::Browser,
    edit: impl Fn(&mut Vec<(String, String)>),
) -> reqwest::Response {
    let started = start_sso(browser, "acme").await;
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    let mut url = url::Url::parse(&callback).unwrap();
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(
        pairs.iter().any(|(k, _)| k == "iss"),
        "the provider sends iss (RFC 9207)"
    );
    edit(&mut pairs);
    url.query_pairs_mut().clear().extend_pairs(pairs);
    browser.client.get(url).send().await.unwrap()
}

#[tokio::test]
async fn an_authorization_response_from_another_issuer_is_refused() {
    let s = setup(Value::Null, SsoPolicy::default()).await;
    let browser = s.app.browser();

    let answer = callback_with_iss(&s, &browser, |pairs| {
        for (k, v) in pairs.iter_mut() {
            if k == "iss" {
                *v = "https://evil.example".into();
            }
        }
    })
    .await;

    refused(answer, "could not be completed").await;
    no_session(&s);
}

#[tokio::test]
async fn a_missing_iss_is_refused_when_the_provider_always_sends_it() {
    let s = setup(Value::Null, SsoPolicy::default()).await;
    let browser = s.app.browser();

    let answer = callback_with_iss(&s, &browser, |pairs| pairs.retain(|(k, _)| k != "iss")).await;

    refused(answer, "could not be completed").await;
    no_session(&s);
}

#[tokio::test]
async fn session_expiry_caps_the_apps_session() {
    let s = setup(
        json!({ "session_expiry": "$now+120" }),
        SsoPolicy::default(),
    )
    .await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    assert_is_redirect_to(&answer, "/todos");
    assert_eq!(
        count(
            &s.app.db,
            "sessions WHERE idp_ends_at BETWEEN now() + interval '100 seconds' AND now() + interval '140 seconds' \
             AND expires_at <= idp_ends_at"
        ),
        1
    );
}

#[tokio::test]
async fn an_id_token_whose_idp_session_has_already_expired_is_refused() {
    let s = setup(json!({ "session_expiry": "$now-5" }), SsoPolicy::default()).await;

    let answer = s
        .idp
        .sign_in(&s.app.browser(), "acme", "alice@acme.test")
        .await;

    refused(answer, "could not be completed").await;
    no_session(&s);
}

#[tokio::test]
async fn idp_initiated_login_starts_sso_for_the_issuers_org_and_lands_on_the_target() {
    let s = setup(Value::Null, SsoPolicy::default()).await;
    let browser = s.app.browser();
    let target = s.app.url("/tokens");
    let mut initiate = url::Url::parse(&s.app.url("/auth/oidc/initiate")).unwrap();
    initiate
        .query_pairs_mut()
        .append_pair("iss", &s.idp.issuer)
        .append_pair("login_hint", "alice@acme.test")
        .append_pair("target_link_uri", &target);

    let started = browser.client.get(initiate).send().await.unwrap();

    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&s.idp.issuer));
    assert!(
        authorize.contains("login_hint=alice%40acme.test"),
        "{authorize}"
    );
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    let answer = browser.client.get(callback).send().await.unwrap();
    assert_is_redirect_to(&answer, "/tokens");
}

#[tokio::test]
async fn idp_initiated_login_never_lands_on_another_site() {
    let s = setup(Value::Null, SsoPolicy::default()).await;
    let browser = s.app.browser();
    let mut initiate = url::Url::parse(&s.app.url("/auth/oidc/initiate")).unwrap();
    initiate
        .query_pairs_mut()
        .append_pair("iss", &s.idp.issuer)
        .append_pair("target_link_uri", "https://evil.example/phish");

    let started = browser.client.get(initiate).send().await.unwrap();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    let answer = browser.client.get(callback).send().await.unwrap();

    assert_is_redirect_to(&answer, "/todos");
}

#[tokio::test]
async fn idp_initiated_login_for_an_unknown_issuer_says_so_and_goes_nowhere() {
    let s = setup(Value::Null, SsoPolicy::default()).await;

    let answer = s
        .app
        .browser()
        .get("/auth/oidc/initiate?iss=https%3A%2F%2Funknown.example")
        .await;

    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert!(answer.headers().get("location").is_none());
    assert!(answer.text().await.unwrap().contains("No organisation"));
    assert_eq!(count(&s.app.db, "oidc_logins"), 0, "nothing started");
    let _ = s.acme;
}
