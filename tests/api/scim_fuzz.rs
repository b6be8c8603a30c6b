//! Hostile SCIM input, generated: PATCH operations with near-valid paths and values of every
//! JSON shape, POST and PUT bodies, filters and raw bytes. Whatever arrives, the app answers a
//! 2xx or a 4xx SCIM error (RFC 7644 §3.12) and never a 5xx.
//!
//! `PROPTEST_CASES` sets the number of cases per property (CI: the default below).

use std::sync::OnceLock;

use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app},
    scim_client::scim_token,
};

/// One app, a SCIM token, a user and a group for every case.
struct Target {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    token: String,
    user: String,
    group: String,
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
        let (app, token, user, group) = runtime.block_on(async {
            let app = spawn_app().await;
            let alice = app.alice().await;
            let token = scim_token(&app, alice.user.org_id).await;
            let group = crate::scim_client::send_as(
                &app,
                &token,
                Method::POST,
                "/Groups",
                Some(&json!({"displayName": "Eng", "members": [{"value": alice.user.id}]})),
                &[],
            )
            .await;
            let group = group.body["id"].as_str().unwrap().to_owned();
            (app, token, alice.user.id.to_string(), group)
        });
        Target {
            runtime,
            app,
            token,
            user,
            group,
            client: reqwest::Client::new(),
        }
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150)
}

/// Sends a request and checks the answer: a 2xx, or a 4xx whose body is a SCIM error.
fn check(method: Method, path: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
    let t = target();
    let path = path.replace("{user}", &t.user).replace("{group}", &t.group);
    let (status, text) = t.runtime.block_on(async {
        let response = t
            .client
            .request(method.clone(), t.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&t.token)
            .header("content-type", "application/scim+json")
            .body(body)
            .send()
            .await
            .expect("the app always answers");
        (response.status(), response.text().await.unwrap_or_default())
    });
    prop_assert!(
        !status.is_server_error(),
        "{method} {path} answered {status}: {text}"
    );
    if status.is_client_error() {
        let error: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
        prop_assert_eq!(
            &error["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        prop_assert_eq!(&error["status"], status.as_str());
    } else {
        prop_assert!(status.is_success(), "{method} {path} answered {status}");
    }
    Ok(())
}

/// Attribute names and paths that are right, almost right, or wrong.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "active",
            "userName",
            "externalId",
            "displayName",
            "name",
            "name.givenName",
            "name.familyName",
            "emails",
            "emails[type eq \"work\"].value",
            "emails[primary eq true].value",
            "members",
            "members[value eq \"x\"]",
            "members[value eq \"00000000-0000-0000-0000-000000000000\"]",
            "groups",
            "id",
            "meta",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            "emails[",
            "a.b.c",
            "]",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z\\[\\]\". ]{0,30}",
    ]
}

/// Arbitrary JSON, nested a few levels, with SCIM words among its keys and strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec!["True", "False", "a@b.c", "x@acme.test", ""])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(path(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn operations() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["add", "Replace", "remove", "REMOVE", "move", ""]);
    let operation = (op, prop::option::of(path()), prop::option::of(json_value()))
        .prop_map(|(op, path, value)| json!({"op": op, "path": path, "value": value}));
    prop::collection::vec(operation, 0..6).prop_map(|ops| json!({"Operations": ops}))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        operations().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), json_value()).prop_map(|(a, b)| {
            json!({"userName": a, "displayName": b, "members": [{"value": a}]})
                .to_string()
                .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scim_writes_of_any_shape_never_fail_the_server(
        target in prop::sample::select(vec![
            (Method::PATCH, "/Users/{user}"), (Method::PATCH, "/Groups/{group}"),
            (Method::PUT, "/Users/{user}"), (Method::PUT, "/Groups/{group}"),
            (Method::POST, "/Users"), (Method::POST, "/Groups"),
        ]),
        body in body(),
    ) {
        check(target.0, target.1, body)?;
    }

    #[test]
    fn scim_filters_of_any_shape_never_fail_the_server(
        filter in prop_oneof![
            "[a-zA-Z\\[\\]\". \\\\]{0,60}",
            (path(), prop::sample::select(vec!["eq", "co", "and", "or", "pr"]), json_value())
                .prop_map(|(p, op, v)| format!("{p} {op} {v}")),
        ],
        resource in prop::sample::select(vec!["/Users", "/Groups"]),
        start in "-?[0-9]{0,20}",
        count in "-?[0-9]{0,20}",
    ) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter)
            .append_pair("startIndex", &start)
            .append_pair("count", &count)
            .finish();
        check(Method::GET, &format!("{resource}?{query}"), Vec::new())?;
    }
}
