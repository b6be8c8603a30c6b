//! Hostile SETs, generated: pushed bodies of every shape (bytes, JWT-shaped tokens, and SETs
//! validly signed by the stream's transmitter whose claims, events and subjects are almost
//! right). Whatever arrives, `/ssf/events` answers 202 or a 4xx with an RFC 8935 error, and
//! never panics or fails. `PROPTEST_CASES` sets the number of cases (default 200).

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use ual_todo::db::models::Delivery;

use crate::{
    fuzz::json_value,
    helpers::{TestApp, spawn_app},
    idp::{b64url, now},
    ssf_transmitter::{Transmitter, configure},
};

struct Target {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    tx: Transmitter,
    header: String,
    audience: String,
    client: reqwest::Client,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (app, tx, header, audience) = runtime.block_on(async {
            let app = spawn_app().await;
            let tx = Transmitter::start(json!({}));
            let alice = app.alice().await;
            let org = ual_todo::db::models::Org::find(&mut *app.conn().await, alice.user.org_id)
                .await
                .unwrap()
                .unwrap();
            let stream = configure(&app, &tx, &org, Delivery::Push).await;
            let state = tx.state().await;
            let header = state["streams"][0]["delivery"]["authorization_header"]
                .as_str()
                .unwrap()
                .to_owned();
            (app, tx, header, stream.audience)
        });
        Target {
            runtime,
            app,
            tx,
            header,
            audience,
            client: reqwest::Client::new(),
        }
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// Pushes `body` and checks the answer: 202, or a 4xx whose body is an RFC 8935 error.
fn check(body: Vec<u8>, content_type: &str) -> Result<(), TestCaseError> {
    let t = target();
    let (status, text) = t.runtime.block_on(async {
        let response = t
            .client
            .post(t.app.url("/ssf/events"))
            .header("authorization", &t.header)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the app always answers");
        (response.status(), response.text().await.unwrap_or_default())
    });
    prop_assert!(!status.is_server_error(), "answered {status}: {text}");
    if status.is_client_error() {
        let error: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
        prop_assert!(
            error["err"].is_string() && error["description"].is_string(),
            "{text}"
        );
    } else {
        prop_assert_eq!(status.as_u16(), 202, "{}", text);
    }
    Ok(())
}

/// Subjects that are almost right: every format, plain and complex, with arbitrary members.
fn subject() -> impl Strategy<Value = Value> {
    let format = prop_oneof![
        Just("email".to_owned()),
        Just("iss_sub".to_owned()),
        Just("opaque".to_owned()),
        Just("complex".to_owned()),
        Just("aliases".to_owned()),
        "[a-z_]{0,12}",
    ];
    let text = prop_oneof![
        Just(json!("alice@acme.test")),
        ".{0,30}".prop_map(Value::String),
        json_value()
    ];
    (format, text.clone(), text, any::<bool>()).prop_map(|(format, a, b, nested)| {
        let plain = json!({ "format": format, "email": a, "iss": b, "sub": a, "id": b, "identifiers": [a] });
        if nested {
            json!({ "user": plain, "session": { "format": "opaque", "id": b } })
        } else {
            plain
        }
    })
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://schemas.openid.net/secevent/caep/event-type/session-revoked".to_owned()),
        Just("https://schemas.openid.net/secevent/caep/event-type/credential-change".to_owned()),
        Just("https://schemas.openid.net/secevent/risc/event-type/account-disabled".to_owned()),
        Just("https://schemas.openid.net/secevent/risc/event-type/account-enabled".to_owned()),
        Just("https://schemas.openid.net/secevent/risc/event-type/identifier-changed".to_owned()),
        Just("https://schemas.openid.net/secevent/ssf/event-type/verification".to_owned()),
        Just("https://schemas.openid.net/secevent/ssf/event-type/stream-updated".to_owned()),
        ".{0,60}",
    ]
}

/// Claims of a SET for the stream, some members replaced by near-misses.
fn claims() -> impl Strategy<Value = Value> {
    (
        event_type(),
        subject(),
        json_value(),
        prop::option::of(subject()),
        prop_oneof![Just(None), json_value().prop_map(Some)],
        prop_oneof![
            Just(None),
            json_value().prop_map(Some),
            any::<i64>().prop_map(|n| Some(json!(n)))
        ],
        prop_oneof![
            Just(None),
            ".{0,300}".prop_map(|s| Some(json!(s))),
            json_value().prop_map(Some)
        ],
    )
        .prop_map(|(event_type, subject, extra, sub_id, aud, iat, jti)| {
            let t = target();
            let mut event = match extra {
                Value::Object(map) => Value::Object(map),
                _ => json!({}),
            };
            event["subject"] = subject;
            event["new-value"] = json!("alice.other@acme.test");
            let mut claims = json!({
                "iss": t.tx.issuer, "aud": t.audience, "iat": now(),
                "jti": uuid::Uuid::new_v4().to_string(), "events": { event_type: event },
            });
            if let Some(sub_id) = sub_id {
                claims["sub_id"] = sub_id;
            }
            if let Some(aud) = aud {
                claims["aud"] = aud;
            }
            if let Some(iat) = iat {
                claims["iat"] = iat;
            }
            if let Some(jti) = jti {
                claims["jti"] = jti;
            }
            claims
        })
}

fn jwt_shaped() -> impl Strategy<Value = String> {
    (
        json_value(),
        json_value(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(header, claims, signature)| {
            format!(
                "{}.{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes()),
                b64url(&signature)
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn signed_sets_of_any_shape_get_202_or_a_4xx_json_error(claims in claims()) {
        let t = target();
        let token = t.runtime.block_on(t.tx.sign(&claims, Value::Null));
        check(token.into_bytes(), "application/secevent+jwt")?;
    }

    #[test]
    fn pushed_bodies_of_any_shape_get_a_4xx_json_error(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            jwt_shaped().prop_map(String::into_bytes),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
        content_type in prop_oneof![Just("application/secevent+jwt"), Just("application/jwt"), Just("text/plain")],
    ) {
        check(body, content_type)?;
    }
}
