//! Hostile input, generated, for `POST /oauth/token`: form bodies of every shape (near-valid
//! parameters, assertions signed by the org's real IdP key over mangled claims, JWT-shaped junk,
//! raw bytes, any content type). Whatever arrives, the answer is a 4xx RFC 6749 JSON error (or,
//! for a request that happens to be valid, a token), never a 5xx. Each case comes from its own
//! address (`X-Forwarded-For`), so the per-address limit does not turn every case into a 429.

use std::sync::OnceLock;

use jsonwebtoken::Algorithm;
use proptest::prelude::*;
use serde_json::{Value, json};
use ual_todo::db::models::Org;

use crate::{
    helpers::{TestApp, spawn_app_with},
    idp::{self, SigningKey, TestIdp, b64url, now},
};

const CLIENT: &str = "0oa-fuzz-client";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Target {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    key: SigningKey,
    client: reqwest::Client,
    _idp: TestIdp,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let key = idp::signing_key("rsa", "rsa-1", Algorithm::RS256);
        let (app, idp) = runtime.block_on(async {
            let app = spawn_app_with(|s| s.trust_proxy_headers = true).await;
            let idp = TestIdp::start(&[&key]).await;
            let org = app.create_org("acme").await;
            Org::set_idp(&mut *app.conn().await, org.id, Some((&idp.issuer, CLIENT)))
                .await
                .unwrap();
            (app, idp)
        });
        Target {
            runtime,
            app,
            key,
            client: reqwest::Client::new(),
            _idp: idp,
        }
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// Claims near a valid assertion's: each member kept, dropped or replaced by junk.
fn claims() -> impl Strategy<Value = Value> {
    let junk = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        Just(json!(["a", 1])),
    ];
    let member = |valid: Value| {
        prop_oneof![
            4 => Just(Some(valid)),
            1 => Just(None),
            1 => junk.clone().prop_map(Some),
        ]
    };
    let aud = target().app.url("/oauth/token");
    (
        member(json!(CLIENT)),
        member(json!(CLIENT)),
        member(json!(aud)),
        member(json!(now() + 60)),
        member(json!(now())),
        member(json!(uuid::Uuid::new_v4().to_string())),
    )
        .prop_map(|(iss, sub, aud, exp, iat, jti)| {
            let mut claims = serde_json::Map::new();
            for (name, value) in [
                ("iss", iss),
                ("sub", sub),
                ("aud", aud),
                ("exp", exp),
                ("iat", iat),
                ("jti", jti),
            ] {
                if let Some(value) = value {
                    claims.insert(name.into(), value);
                }
            }
            Value::Object(claims)
        })
}

fn assertion() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => claims().prop_map(|c| idp::sign(&target().key, None, &c)),
        1 => (".{0,60}", ".{0,60}").prop_map(|(h, c)| format!("{}.{}.", b64url(h.as_bytes()), b64url(c.as_bytes()))),
        1 => ".{0,300}",
    ]
}

fn text_or(valid: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some(valid.to_owned())),
        1 => Just(None),
        1 => ".{0,40}".prop_map(Some),
    ]
}

/// A form body: the parameters, perhaps one repeated, perhaps extra ones.
fn form() -> impl Strategy<Value = Vec<u8>> {
    (
        text_or("client_credentials"),
        text_or(ASSERTION_TYPE),
        prop::option::of(assertion()),
        text_or("scim"),
        prop::collection::vec(("[a-z_]{1,12}", ".{0,20}"), 0..20),
    )
        .prop_map(|(grant, kind, assertion, scope, extra)| {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in [
                ("grant_type", grant),
                ("client_assertion_type", kind),
                ("client_assertion", assertion),
                ("scope", scope),
            ] {
                if let Some(value) = value {
                    form.append_pair(name, &value);
                }
            }
            for (name, value) in extra {
                form.append_pair(&name, &value);
            }
            form.finish().into_bytes()
        })
}

fn send(content_type: Option<&str>, body: Vec<u8>, ip: [u8; 4]) -> Result<(), TestCaseError> {
    let t = target();
    let (status, text) = t.runtime.block_on(async {
        let mut request = t
            .client
            .post(t.app.url("/oauth/token"))
            .header("X-Forwarded-For", std::net::Ipv4Addr::from(ip).to_string())
            .body(body);
        if let Some(value) = content_type {
            request = request.header("Content-Type", value);
        }
        let response = request.send().await.expect("the app always answers");
        (response.status(), response.text().await.unwrap_or_default())
    });
    prop_assert!(!status.is_server_error(), "answered {status}: {text}");
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
    if status.is_success() {
        prop_assert!(
            answer["access_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("scim_"))
        );
    } else {
        prop_assert!(status.is_client_error(), "answered {status}");
        prop_assert!(
            answer["error"].is_string() && answer["error_description"].is_string(),
            "{text}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_token_endpoint_answers_any_form_with_an_oauth_error_or_a_token(
        body in form(),
        ip in any::<[u8; 4]>(),
    ) {
        send(Some("application/x-www-form-urlencoded"), body, ip)?;
    }

    #[test]
    fn the_token_endpoint_answers_any_bytes_with_an_oauth_error(
        body in prop::collection::vec(any::<u8>(), 0..10_000),
        content_type in prop_oneof![
            Just(None),
            Just(Some("application/x-www-form-urlencoded")),
            Just(Some("application/json")),
        ],
        ip in any::<[u8; 4]>(),
    ) {
        send(content_type, body, ip)?;
    }
}
