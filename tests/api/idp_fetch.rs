//! What the app fetches from identity providers, and what it tells an unauthenticated caller about
//! it: never a loopback or private address unless allowed, one fetch per failing issuer per
//! interval, one description for every failure, capped bodies, and no open redirect at SSO start.

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::{
    db::models::{Org, org::IdpSettings},
    secret_box::SecretBox,
};

use crate::{
    helpers::{TestApp, email_subject, spawn_app, spawn_app_with},
    idp::{self, CountingServer, NOT_FOUND, SigningKey, TestIdp, sign, sign_with},
};

const CLIENT_ID: &str = "ual-todo-client";
const UAL_TYP: Option<&str> = Some("global-token-revocation+jwt");

fn rsa() -> SigningKey {
    idp::signing_key("rsa", "rsa-1", Algorithm::RS256)
}

/// A new org `slug` trusting `issuer` for Universal Logout JWTs.
async fn org_trusting(app: &TestApp, slug: &str, issuer: &str) -> Org {
    let org = app.create_org(slug).await;
    Org::set_idp(&mut *app.conn().await, org.id, Some((issuer, CLIENT_ID)))
        .await
        .unwrap()
}

/// A Universal Logout call with a JWT naming `issuer`, signed by `key`.
async fn call_with_jwt(app: &TestApp, issuer: &str, jwt: impl FnOnce(&Value) -> String) -> Value {
    let claims = idp::ual_claims(issuer, CLIENT_ID, &app.address);
    let response = app
        .universal_logout(&jwt(&claims), &email_subject("alice@acme.test"))
        .await;
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.unwrap_or(json!({}));
    body["status"] = json!(status);
    body
}

/// The answer to a Universal Logout JWT for `issuer` signed with the test key.
async fn ual_jwt(app: &TestApp, issuer: &str) -> Value {
    call_with_jwt(app, issuer, |claims| sign(&rsa(), UAL_TYP, claims)).await
}

#[tokio::test]
async fn an_issuer_on_a_loopback_address_is_never_contacted_without_the_insecure_flag() {
    let app = spawn_app_with(|settings| settings.allow_insecure_idp = false).await;
    let service = CountingServer::start(NOT_FOUND);
    let by_name = format!("https://localhost:{}", service.port);
    let by_address = format!("https://127.0.0.1:{}", service.port);
    org_trusting(&app, "acme", &by_name).await;
    org_trusting(&app, "globex", &by_address).await;

    for issuer in [&by_name, &by_address] {
        let answer = ual_jwt(&app, issuer).await;
        assert_eq!(answer["status"], 401, "{answer}");
        assert_eq!(answer["error_description"], GENERIC, "{answer}");
    }

    assert_eq!(service.connections(), 0, "the app never connected");
}

/// What every caller is told when the issuer's keys cannot be fetched, whatever the reason.
const GENERIC: &str = "the issuer's signing keys cannot be fetched right now";

#[tokio::test]
async fn every_fetch_failure_gets_the_same_description() {
    let app = spawn_app().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let missing = CountingServer::start(NOT_FOUND);
    let refused = format!("http://{closed}");
    let not_found = format!("http://127.0.0.1:{}", missing.port);
    org_trusting(&app, "acme", &refused).await;
    org_trusting(&app, "globex", &not_found).await;

    let a = ual_jwt(&app, &refused).await;
    let b = ual_jwt(&app, &not_found).await;

    assert_eq!(a["status"], 401);
    assert_eq!(b["status"], 401);
    assert_eq!(a["error_description"], b["error_description"]);
    assert_eq!(a["error_description"], GENERIC);
    assert_eq!(missing.connections(), 1, "the 404 was really fetched");
}

#[tokio::test]
async fn a_failing_issuer_is_fetched_once_for_many_jwts() {
    let app = spawn_app().await;
    let failing = CountingServer::start(NOT_FOUND);
    let issuer = format!("http://127.0.0.1:{}", failing.port);
    org_trusting(&app, "acme", &issuer).await;

    let answers = futures_util::future::join_all((0..15).map(|_| ual_jwt(&app, &issuer))).await;
    let again = ual_jwt(&app, &issuer).await;

    for answer in answers.iter().chain([&again]) {
        assert_eq!(answer["status"], 401, "{answer}");
    }
    assert_eq!(failing.connections(), 1, "one fetch, remembered as failed");
}

#[tokio::test]
async fn a_universal_logout_jwt_with_a_crit_header_is_refused() {
    let app = spawn_app().await;
    let key = rsa();
    let idp = TestIdp::start(&[&key]).await;
    let acme = org_trusting(&app, "acme", &idp.issuer).await;
    app.create_user(acme.id, "alice@acme.test", false).await;
    let critical = |claims: &Value| {
        sign_with(&key, UAL_TYP, claims, |header| {
            header.crit = Some(vec!["exp".into()]);
        })
    };

    let refused = call_with_jwt(&app, &idp.issuer, critical).await;
    let plain = ual_jwt(&app, &idp.issuer).await;

    assert_eq!(refused["status"], 401, "{refused}");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("crit"),
        "{refused}"
    );
    assert_eq!(plain["status"], 204, "the same JWT without crit is fine");
}

/// The members of a discovery document openidconnect needs for SSO, endpoints at the issuer.
fn sso_discovery() -> Value {
    json!({
        "authorization_endpoint": "{issuer}/authorize",
        "token_endpoint": "{issuer}/token",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// An app whose org `acme` signs in through a test IdP with these discovery members.
async fn sso_app(discovery: Value) -> (TestApp, TestIdp) {
    let app = spawn_app().await;
    let mut document = sso_discovery();
    for (name, value) in discovery.as_object().unwrap() {
        document[name] = value.clone();
    }
    let idp = TestIdp::start_with(&[&rsa()], document).await;
    let acme = app.create_org("acme").await;
    let mut conn = app.conn().await;
    let settings = ual_todo::config::Settings::for_database(app.db.url.clone());
    let (secrets, _) = SecretBox::load(&mut conn, &settings).await.unwrap();
    let idp_settings = IdpSettings {
        issuer: &idp.issuer,
        client_id: CLIENT_ID,
        client_secret: Some("s3cret"),
        email_domain: None,
        create_users: true,
    };
    Org::configure_idp(&mut conn, acme.id, &idp_settings, &secrets)
        .await
        .unwrap();
    drop(conn);
    (app, idp)
}

/// Where `/auth/oidc/start` for acme sends the browser, or its status when it does not.
async fn sso_start(app: &TestApp) -> Result<String, StatusCode> {
    let started = crate::oidc_provider::start_sso(&app.browser(), "acme").await;
    match started.status() {
        StatusCode::SEE_OTHER => Ok(started.headers()["location"].to_str().unwrap().to_owned()),
        status => Err(status),
    }
}

#[tokio::test]
async fn sso_start_goes_to_an_authorization_endpoint_at_the_issuer() {
    let (app, idp) = sso_app(json!({})).await;

    let location = sso_start(&app).await.unwrap();

    assert!(location.starts_with(&format!("{}/authorize?", idp.issuer)));
}

#[tokio::test]
async fn sso_start_never_redirects_to_an_authorization_endpoint_elsewhere() {
    let (app, _idp) = sso_app(json!({
        "authorization_endpoint": "https://elsewhere.example/authorize",
    }))
    .await;

    assert_eq!(sso_start(&app).await, Err(StatusCode::SERVICE_UNAVAILABLE));
}

#[tokio::test]
async fn an_oversized_discovery_document_is_refused_at_sso_start() {
    let (app, _idp) = sso_app(json!({ "padding": "x".repeat(300 * 1024) })).await;

    assert_eq!(sso_start(&app).await, Err(StatusCode::SERVICE_UNAVAILABLE));
}

#[tokio::test]
async fn the_insecure_flag_still_refuses_plain_http_issuers_not_on_loopback() {
    let app = spawn_app().await;
    org_trusting(&app, "acme", "http://idp.acme.test").await;

    let answer = ual_jwt(&app, "http://idp.acme.test").await;

    assert_eq!(answer["status"], 401);
    assert_eq!(answer["error_description"], GENERIC);
}
