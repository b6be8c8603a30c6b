//! The org's Shared Signals stream, set up from the command line (`org set-ssf`, `org
//! ssf-verify`, `org remove-ssf`) at a real transmitter process: discovery, stream creation with
//! the org's bearer, the push header that names the org, and what happens when the org moves.

use std::time::Duration;

use serde_json::{Value, json};
use ual_todo::db::models::{Delivery, Org, SsfStream, User};

use crate::{
    helpers::{TestApp, run_cli, run_cli_strict, spawn_app},
    ssf_transmitter::{BEARER, Transmitter, known_at_idp, push_status},
};

pub(crate) fn set_ssf(
    app: &TestApp,
    transmitter: &str,
    bearer: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--public-url",
        &app.address,
        "org",
        "set-ssf",
        "acme",
        "--transmitter",
        transmitter,
        "--bearer-stdin",
        "--json",
    ];
    args.extend_from_slice(extra);
    run_cli(&app.db, &args, Some(bearer), "warn")
}

pub(crate) fn succeeded(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub(crate) async fn stream(app: &TestApp) -> Option<SsfStream> {
    let mut conn = app.conn().await;
    let org = Org::find_by_slug(&mut conn, "acme").await.unwrap().unwrap();
    SsfStream::for_org(&mut conn, org.id).await.unwrap()
}

/// Pushes Okta's credential-change for alice (known to the org's IdP) on the transmitter's
/// newest stream.
pub(crate) async fn push_for_alice(app: &TestApp, tx: &Transmitter) -> Value {
    let mut conn = app.conn().await;
    let org = Org::find_by_slug(&mut conn, "acme").await.unwrap().unwrap();
    let alice = User::find_by_email(&mut conn, org.id, "alice@acme.test")
        .await
        .unwrap()
        .unwrap();
    let who = known_at_idp(&mut conn, org.id, alice.id, "00u-alice").await;
    drop(conn);
    tx.example("okta-credential-change", who).await
}

#[tokio::test]
async fn set_ssf_creates_a_push_stream_whose_sets_take_effect() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let alice = app.alice().await;

    let printed = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));

    assert_eq!(printed["delivery"], "push");
    assert_eq!(printed["endpoint"], app.url("/ssf/events"));
    let state = tx.state().await;
    let created = &state["streams"][0];
    assert_eq!(created["stream_id"], printed["stream_id"]);
    assert_eq!(created["delivery"]["method"], "urn:ietf:rfc:8935");
    assert_eq!(created["delivery"]["endpoint_url"], app.url("/ssf/events"));
    assert!(
        created["delivery"]["authorization_header"]
            .as_str()
            .unwrap()
            .starts_with("Bearer ssf_")
    );
    assert!(
        created["events_requested"]
            .as_array()
            .unwrap()
            .contains(&json!(
                "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
            ))
    );
    let stored = stream(&app).await.unwrap();
    assert_eq!(stored.delivery, Delivery::Push);
    assert_eq!(stored.issuer, tx.issuer);
    assert!(stored.bearer_sealed.is_some());
    let sealed = stored.bearer_sealed.unwrap();
    assert!(
        !sealed.windows(BEARER.len()).any(|w| w == BEARER.as_bytes()),
        "sealed, not plain"
    );

    let browser = app.signed_in(&alice).await;
    assert_eq!(push_for_alice(&app, &tx).await["status"], 202);
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn a_bearer_the_transmitter_refuses_stores_nothing() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    let output = set_ssf(&app, &tx.issuer, "wrong", &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
    assert!(stream(&app).await.is_none());
}

#[tokio::test]
async fn a_configuration_naming_another_issuer_is_refused() {
    let app = spawn_app().await;
    let tx =
        Transmitter::start(json!({ "configuration_patch": { "issuer": "https://evil.example" } }));
    app.alice().await;
    let output = set_ssf(&app, &tx.issuer, BEARER, &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("another issuer"));
    assert!(stream(&app).await.is_none());
}

#[tokio::test]
async fn an_issuer_with_a_path_is_found_and_older_risc_transmitters_too() {
    let app = spawn_app().await;
    app.alice().await;
    let with_path = Transmitter::start(json!({ "path": "/tenants/acme" }));
    assert!(with_path.issuer.ends_with("/tenants/acme"));
    succeeded(&set_ssf(&app, &with_path.issuer, BEARER, &[]));
    assert_eq!(stream(&app).await.unwrap().issuer, with_path.issuer);

    let risc = Transmitter::start(json!({ "risc_only": true }));
    succeeded(&set_ssf(&app, &risc.issuer, BEARER, &[]));
    assert_eq!(stream(&app).await.unwrap().issuer, risc.issuer);
}

#[tokio::test]
async fn a_plain_http_transmitter_is_refused_unless_insecure_idps_are_allowed() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    let output = run_cli_strict(
        &app.db,
        &[
            "org",
            "set-ssf",
            "acme",
            "--transmitter",
            &tx.issuer,
            "--bearer-stdin",
        ],
        Some(BEARER),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("https"));
    assert!(stream(&app).await.is_none());
}

#[tokio::test]
async fn moving_to_a_new_transmitter_deletes_the_old_stream_and_its_header_stops_working() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let old = Transmitter::start(json!({}));
    let new = Transmitter::start(json!({}));
    succeeded(&set_ssf(&app, &old.issuer, BEARER, &[]));
    let old_state = old.state().await;
    let old_stream = old_state["streams"][0].clone();

    succeeded(&set_ssf(&app, &new.issuer, BEARER, &[]));

    let old_after = old.state().await;
    assert_eq!(
        old_after["streams"],
        json!([]),
        "deleted at the old transmitter"
    );
    assert!(
        old_after["management"]
            .as_array()
            .unwrap()
            .contains(&json!("DELETE /streams"))
    );
    // The old transmitter's push, with the old header: 401.
    let token = old
        .sign(
            &json!({ "iss": old.issuer, "aud": old_stream["aud"], "iat": crate::idp::now(), "jti": "j",
                     "events": { "https://schemas.openid.net/secevent/caep/event-type/credential-change":
                                 { "subject": { "format": "email", "email": "alice@acme.test" } } } }),
            Value::Null,
        )
        .await;
    let response = reqwest::Client::new()
        .post(app.url("/ssf/events"))
        .header("content-type", "application/secevent+jwt")
        .header(
            "authorization",
            old_stream["delivery"]["authorization_header"]
                .as_str()
                .unwrap(),
        )
        .body(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let browser = app.signed_in(&alice).await;
    assert_eq!(push_for_alice(&app, &new).await["status"], 202);
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn ssf_verify_asks_for_a_verification_and_its_arrival_is_recorded() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));

    let printed = succeeded(&run_cli(
        &app.db,
        &["org", "ssf-verify", "acme", "--json"],
        None,
        "warn",
    ));

    let state = printed["state"].as_str().unwrap().to_owned();
    let mut verified = None;
    for _ in 0..50 {
        let stored = stream(&app).await.unwrap();
        if stored.verified_at.is_some() {
            verified = Some(stored);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = verified.expect("the verification event arrived");
    assert_eq!(stored.verification_state.as_deref(), Some(state.as_str()));
    let counted = crate::ssf_transmitter::counted(&app, stored.org_id, 1).await;
    assert_eq!(counted.events_received, 1);
}

#[tokio::test]
async fn remove_ssf_deletes_the_stream_there_and_here() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));
    let header = tx.state().await["streams"][0]["delivery"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();

    succeeded(&run_cli(
        &app.db,
        &["org", "remove-ssf", "acme", "--json"],
        None,
        "warn",
    ));

    assert!(stream(&app).await.is_none());
    assert_eq!(tx.state().await["streams"], json!([]));
    assert_eq!(
        push_status(&app, &header).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
}
