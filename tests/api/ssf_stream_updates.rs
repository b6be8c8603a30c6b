//! Changing the org's Shared Signals stream where it is (SSF 1.0 §8.1.1.3–4): a new delivery or
//! bearer at the same transmitter updates the stream there, keeping its id (PATCH, or PUT for
//! a transmitter without PATCH); and its status, read from the transmitter (§8.1.2.1).

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use ual_todo::{db::models::Delivery, ssf::manage};

use crate::{
    helpers::{run_cli, spawn_app},
    ssf_streams::{push_for_alice, set_ssf, stream, succeeded},
    ssf_transmitter::{BEARER, Transmitter, push_status, secrets},
};

/// The transmitter's record of the calls to `route` with `method`: (stream id, body).
fn calls(state: &Value, method: &str, route: &str) -> Vec<(Value, Value)> {
    state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["route"] == route)
        .map(|r| (r["stream_id"].clone(), r["body"].clone()))
        .collect()
}

#[tokio::test]
async fn a_new_delivery_at_the_same_transmitter_updates_the_stream_in_place() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    let first = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));
    let old_header = tx.state().await["streams"][0]["delivery"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();

    // No bearer on standard input: the stored one goes to the same transmitter.
    let second = succeeded(&run_cli(
        &app.db,
        &[
            "--public-url",
            &app.address,
            "org",
            "set-ssf",
            "acme",
            "--transmitter",
            &tx.issuer,
            "--delivery",
            "poll",
            "--json",
        ],
        None,
        "warn",
    ));

    assert_eq!(second["stream_id"], first["stream_id"]);
    let state = tx.state().await;
    assert_eq!(state["streams"].as_array().unwrap().len(), 1);
    assert_eq!(state["streams"][0]["stream_id"], first["stream_id"]);
    assert_eq!(calls(&state, "POST", "/streams").len(), 1, "created once");
    assert!(
        calls(&state, "DELETE", "/streams").is_empty(),
        "never deleted"
    );
    let patched = calls(&state, "PATCH", "/streams");
    assert_eq!(patched.len(), 1);
    assert_eq!(patched[0].0, first["stream_id"]);
    assert_eq!(
        patched[0].1["delivery"],
        json!({ "method": "urn:ietf:rfc:8936" })
    );
    assert_eq!(
        state["streams"][0]["delivery"]["method"],
        "urn:ietf:rfc:8936"
    );
    let stored = stream(&app).await.unwrap();
    assert_eq!(stored.delivery, Delivery::Poll);
    assert_eq!(
        stored.poll_endpoint.as_deref(),
        state["streams"][0]["delivery"]["endpoint_url"].as_str()
    );
    // The push header it had no longer names the org.
    assert_eq!(
        push_status(&app, &old_header).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_new_bearer_updates_the_stream_in_place_and_rotates_the_push_header() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({ "bearers": [BEARER, "tx-rotated"] }));
    let alice = app.alice().await;
    let first = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));
    let old_header = tx.state().await["streams"][0]["delivery"]["authorization_header"].clone();

    let second = succeeded(&set_ssf(&app, &tx.issuer, "tx-rotated", &[]));

    assert_eq!(second["stream_id"], first["stream_id"]);
    let state = tx.state().await;
    assert_eq!(calls(&state, "PATCH", "/streams").len(), 1);
    let new_header = state["streams"][0]["delivery"]["authorization_header"].clone();
    assert_ne!(new_header, old_header, "a new push header");
    let stored = stream(&app).await.unwrap();
    let bearer = manage::bearer(&secrets(&app).await, &stored)
        .unwrap()
        .unwrap();
    assert_eq!(bearer.expose_secret(), "tx-rotated");
    let browser = app.signed_in(&alice).await;
    assert_eq!(push_for_alice(&app, &tx).await["status"], 202);
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn a_transmitter_without_patch_gets_the_configuration_replaced() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({ "patch_unsupported": true }));
    app.alice().await;
    let first = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));

    let second = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &["--delivery", "poll"]));

    assert_eq!(second["stream_id"], first["stream_id"]);
    let state = tx.state().await;
    let put = calls(&state, "PUT", "/streams");
    assert_eq!(put.len(), 1, "{state}");
    assert_eq!(put[0].0, first["stream_id"]);
    let body = &put[0].1;
    assert_eq!(body["delivery"]["method"], "urn:ietf:rfc:8936");
    assert!(
        body["events_requested"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    assert!(body["description"].is_string(), "the full configuration");
    assert_eq!(state["streams"].as_array().unwrap().len(), 1);
    assert_eq!(stream(&app).await.unwrap().delivery, Delivery::Poll);
}

#[tokio::test]
async fn a_stream_gone_at_the_transmitter_is_created_anew() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    let first = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/streams?stream_id={}",
            tx.issuer,
            first["stream_id"].as_str().unwrap()
        ))
        .bearer_auth(BEARER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);

    let second = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));

    assert_ne!(second["stream_id"], first["stream_id"]);
    let state = tx.state().await;
    assert_eq!(state["streams"][0]["stream_id"], second["stream_id"]);
}

#[tokio::test]
async fn ssf_status_reads_the_status_from_the_transmitter_and_stores_it() {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    app.alice().await;
    let created = succeeded(&set_ssf(&app, &tx.issuer, BEARER, &[]));
    tx.set_status("disabled", Some("Disabled by administrator action."))
        .await;

    let printed = succeeded(&run_cli(
        &app.db,
        &["org", "ssf-status", "acme", "--json"],
        None,
        "warn",
    ));

    assert_eq!(printed["status"], "disabled");
    assert_eq!(printed["status_from_transmitter"], true);
    assert_eq!(printed["reason"], "Disabled by administrator action.");
    assert_eq!(printed["stream_id"], created["stream_id"]);
    assert_eq!(printed["events_received"], 0);
    let asked = calls(&tx.state().await, "GET", "/streams/status");
    assert_eq!(asked, vec![(created["stream_id"].clone(), Value::Null)]);
    assert_eq!(stream(&app).await.unwrap().status.as_str(), "disabled");
}

#[tokio::test]
async fn moving_without_a_bearer_never_sends_the_stored_one_to_the_new_transmitter() {
    let app = spawn_app().await;
    app.alice().await;
    let old = Transmitter::start(json!({}));
    // The new transmitter would accept the old one's bearer: it must never be offered it.
    let new = Transmitter::start(json!({}));
    let first = succeeded(&set_ssf(&app, &old.issuer, BEARER, &[]));

    let output = run_cli(
        &app.db,
        &[
            "--public-url",
            &app.address,
            "org",
            "set-ssf",
            "acme",
            "--transmitter",
            &new.issuer,
            "--json",
        ],
        None,
        "warn",
    );

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
    let seen = new.state().await;
    assert_eq!(seen["management"], json!([]), "no authorized call: {seen}");
    assert_eq!(seen["streams"], json!([]));
    let kept = stream(&app).await.unwrap();
    assert_eq!(
        kept.stream_id.as_ref(),
        first["stream_id"].as_str().map(str::to_owned).as_ref()
    );
    assert_eq!(old.state().await["streams"].as_array().unwrap().len(), 1);
}
