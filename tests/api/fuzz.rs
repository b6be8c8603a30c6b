//! Hostile input, generated: Universal Logout and back-channel logout requests of every shape
//! (credentials, content types, bodies: bytes, JSON, near-valid subjects, JWT-shaped tokens).
//! Whatever arrives, the app answers a 4xx with a JSON error and never panics or fails.
//!
//! `PROPTEST_CASES` sets the number of cases per property (CI: the default below; the
//! documented run: 100000, see README).

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, UNIVERSAL_LOGOUT, spawn_app},
    idp::b64url,
};

/// One app and runtime for every case.
struct Target {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    key: String,
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
        let (app, key) = runtime.block_on(async {
            let app = spawn_app().await;
            let alice = app.alice().await;
            let key = app.api_key(alice.user.org_id).await;
            (app, key)
        });
        Target {
            runtime,
            app,
            key,
            client: reqwest::Client::new(),
        }
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

/// Sends a request and checks the answer: a 4xx (or, for a request that happens to be valid,
/// a 2xx) whose body, if any, is a JSON error.
fn check(
    path: &str,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
) -> Result<(), TestCaseError> {
    let t = target();
    let (status, text) = t.runtime.block_on(async {
        let mut request = t.client.post(t.app.url(path)).body(body);
        // Latin-1 chars back to the bytes they stand for, so any header byte can be sent.
        let bytes = |text: String| {
            reqwest::header::HeaderValue::from_bytes(
                &text.chars().map(|c| c as u8).collect::<Vec<_>>(),
            )
        };
        if let Some(value) = authorization.and_then(|v| bytes(v).ok()) {
            request = request.header("Authorization", value);
        }
        if let Some(value) = content_type.and_then(|v| bytes(v).ok()) {
            request = request.header("Content-Type", value);
        }
        let response = request.send().await.expect("the app always answers");
        (response.status(), response.text().await.unwrap_or_default())
    });
    prop_assert!(
        !status.is_server_error(),
        "{path} answered {status}: {text}"
    );
    if status.is_client_error() {
        let error: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
        prop_assert!(
            error["error"].is_string() && error["error_description"].is_string(),
            "{text}"
        );
    } else {
        prop_assert!(status.is_success(), "{path} answered {status}");
    }
    Ok(())
}

/// Arbitrary JSON, nested a few levels (the UAL and Shared Signals fuzzers').
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_-]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Subject identifiers that are almost right.
fn subject() -> impl Strategy<Value = Value> {
    let format = prop_oneof![
        Just("email".to_owned()),
        Just("iss_sub".to_owned()),
        Just("opaque".to_owned()),
        Just("aliases".to_owned()),
        Just("phone_number".to_owned()),
        "[a-z_]{0,12}",
    ];
    (format, json_value(), json_value(), prop_oneof![Just("sub_id"), Just("subject"), Just("sub")]).prop_map(
        |(format, a, b, key)| json!({ key: { "format": format, "email": a, "iss": b.clone(), "sub": b, "id": a, "identifiers": [a] } }),
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        subject().prop_map(|v| v.to_string().into_bytes()),
        (1usize..20_000)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (16_000usize..40_000).prop_map(|n| format!(
            r#"{{"sub_id":{{"format":"email","email":"{}"}}}}"#,
            "a".repeat(n)
        )
        .into_bytes()),
    ]
}

/// Header bytes as a client may send them: printable ASCII and obsolete 8-bit text.
fn header_bytes(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..max)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
}

fn authorization() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        // The real key, so the body checks beyond authentication are reached.
        4 => Just(Some("VALID".to_owned())),
        1 => Just(None),
        1 => header_bytes(80).prop_map(Some),
        1 => "[A-Za-z0-9]{0,60}".prop_map(|s| Some(format!("Bearer ual_{s}"))),
        1 => "[A-Za-z0-9_.-]{0,300}".prop_map(|s| Some(format!("Bearer {s}"))),
        1 => Just(Some("Bearer".to_owned())),
        1 => Just(Some("Basic dXNlcjpwYXNz".to_owned())),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=utf-8".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        header_bytes(60).prop_map(Some),
    ]
}

/// A JWT-shaped token: base64url parts of arbitrary JSON (or bytes), never validly signed.
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
    fn universal_logout_answers_any_request_with_a_4xx_json_error(
        authorization in authorization(),
        content_type in content_type(),
        body in body(),
    ) {
        let authorization = authorization.map(|a| if a == "VALID" { format!("Bearer {}", target().key) } else { a });
        check(UNIVERSAL_LOGOUT, authorization, content_type, body)?;
    }

    #[test]
    fn back_channel_logout_answers_any_request_with_a_4xx_json_error(
        token in prop_oneof![".{0,200}", jwt_shaped()],
        raw in prop::collection::vec(any::<u8>(), 0..512),
        as_form in any::<bool>(),
        content_type in content_type(),
    ) {
        let body = if as_form {
            url::form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", &token).finish().into_bytes()
        } else {
            raw
        };
        let content_type = if as_form { Some("application/x-www-form-urlencoded".to_owned()) } else { content_type };
        check("/backchannel-logout", None, content_type, body)?;
    }
}

#[test]
fn absurd_headers_and_lengths_are_refused_cleanly() {
    let t = target();
    t.runtime.block_on(async {
        let url = t.app.url(UNIVERSAL_LOGOUT);
        // A Content-Length far beyond the limit, with a short body.
        let huge = t
            .client
            .post(&url)
            .bearer_auth(&t.key)
            .header("Content-Type", "application/json")
            .header("Content-Length", "99999999999")
            .body("{}")
            .send()
            .await;
        if let Ok(response) = huge {
            assert!(response.status().is_client_error(), "{}", response.status());
        }
        // Header and cookie sizes beyond what a browser sends: refused or ignored, never a failure.
        // Each on a new connection: the server rightly drops one after refusing its headers, and a
        // pooled client could race that close with its next request.
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        for size in [64 * 1024, 1024 * 1024] {
            let big_header = no_redirects
                .get(t.app.url("/todos"))
                .header("X-Junk", "x".repeat(size))
                .send()
                .await;
            if let Ok(response) = big_header {
                assert!(
                    !response.status().is_server_error(),
                    "{}",
                    response.status()
                );
            }
        }
        let big_cookie = no_redirects
            .get(t.app.url("/todos"))
            .header("Cookie", format!("ual_todo={}", "A".repeat(30_000)))
            .send()
            .await
            .unwrap();
        assert!(
            !big_cookie.status().is_server_error(),
            "{}",
            big_cookie.status()
        );
        // The app is still there.
        let health = t.client.get(t.app.url("/healthz")).send().await.unwrap();
        assert!(health.status().is_success());
    });
}

/// PostgreSQL text cannot hold NUL: every form and query that reaches the database refuses it
/// (and other control characters where only one line makes sense) with a 4xx or the form's
/// message, and saves nothing.
#[tokio::test]
async fn nul_and_control_characters_are_refused_everywhere() {
    let app = crate::helpers::spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let browser = app.signed_in(&admin).await;
    let anonymous = app.browser();
    let not_5xx = |what: &str, status: reqwest::StatusCode| {
        assert!(!status.is_server_error(), "{what} answered {status}");
    };

    let sign_in = anonymous
        .post_form("/login", &[("email", "a\0b@acme.test"), ("password", "x")])
        .await;
    assert_eq!(
        sign_in.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "like an unknown email"
    );
    not_5xx(
        "SSO start",
        anonymous
            .post_form("/auth/oidc/start", &[("org", "a\0b")])
            .await
            .status(),
    );
    for (path, field, why) in [
        ("/todos", "title", "no control characters"),
        ("/settings/tokens", "name", "on one line"),
    ] {
        for value in ["a\0b", "two\nlines"] {
            not_5xx(
                path,
                browser.post_form(path, &[(field, value)]).await.status(),
            );
            assert!(browser.page(path).await.contains(why), "{path} says why");
        }
    }
    for path in [
        "/admin/keys/a%00b/revoke",
        "/admin/users/a%00b/logout",
        "/todos/a%00b/toggle",
    ] {
        not_5xx(path, browser.post_form(path, &[]).await.status());
    }
    not_5xx(
        "/admin/idp",
        browser
            .post_form(
                "/admin/idp",
                &[
                    ("issuer", "https://idp.test"),
                    ("client_id", "x\0"),
                    ("email_domain", ""),
                    ("client_secret", ""),
                ],
            )
            .await
            .status(),
    );
    let key = app.api_key(org.id).await;
    for subject in [
        json!({"format": "email", "email": "\u{0}"}),
        json!({"format": "iss_sub", "iss": "x", "sub": "\u{0}"}),
        json!({"format": "opaque", "id": "\u{0}"}),
    ] {
        let answer = app
            .universal_logout(&key, &json!({ "sub_id": subject }))
            .await;
        assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
    }
    assert_eq!(crate::helpers::count(&app.db, "todos"), 0);
    assert_eq!(crate::helpers::count(&app.db, "access_tokens"), 0);
    assert_eq!(crate::helpers::count(&app.db, "revocations"), 0);
}
