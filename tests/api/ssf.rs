//! Shared Signals push delivery (`POST /ssf/events`, RFC 8935) from a real transmitter process
//! (e2e/ssf): the published CAEP, RISC, SSF and Okta payloads take effect through the one
//! revocation path; every malformed, forged, misaddressed or replayed SET is refused and changes
//! nothing.

use std::time::Duration;

use diesel::{RunQueryDsl as _, connection::SimpleConnection as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::db::models::{AccessToken, Delivery, Org, SsfStream, User};

use crate::{
    helpers::{Browser, EventStream, TestApp, TestUser, count, spawn_app},
    ssf_transmitter::{Transmitter, configure},
};

pub const IDP: &str = "https://idp.example.com/123456789/";
const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

pub struct Setup {
    pub app: TestApp,
    pub tx: Transmitter,
    pub alice: TestUser,
    pub org: Org,
    pub stream: SsfStream,
}

/// The app, a transmitter, org `acme` with its push stream there, and alice (known to the
/// org's IdP as `00u-alice`).
pub async fn setup() -> Setup {
    let app = spawn_app().await;
    let tx = Transmitter::start(json!({}));
    let alice = app.alice().await;
    let mut conn = app.conn().await;
    let org = Org::set_idp(&mut conn, alice.user.org_id, Some((IDP, "acme-app")))
        .await
        .unwrap();
    User::set_oidc_identity(&mut conn, alice.user.id, IDP, "00u-alice")
        .await
        .unwrap();
    drop(conn);
    let stream = configure(&app, &tx, &org, Delivery::Push).await;
    Setup {
        app,
        tx,
        alice,
        org,
        stream,
    }
}

impl Setup {
    /// The authorization header the app gave the transmitter for its newest stream.
    pub async fn header(&self) -> String {
        let state = self.tx.state().await;
        let streams = state["streams"].as_array().unwrap();
        streams.last().unwrap()["delivery"]["authorization_header"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// POSTs `body` to the push endpoint as a transmitter would, with `authorization`.
    pub async fn push(
        &self,
        body: &str,
        content_type: &str,
        authorization: Option<&str>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(self.app.url("/ssf/events"))
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send().await.unwrap()
    }

    /// Pushes a token with the stream's own header.
    pub async fn push_token(&self, token: &str) -> reqwest::Response {
        let header = self.header().await;
        self.push(token, "application/secevent+jwt", Some(&header))
            .await
    }

    /// A browser signed in as alice, its session marked as IdP session `sid`.
    async fn session_with_sid(&self, sid: &str) -> Browser {
        let browser = self.app.signed_in(&self.alice).await;
        diesel::sql_query(format!(
            "UPDATE sessions SET oidc_sid = '{sid}' WHERE oidc_sid IS NULL AND user_id = '{}'",
            self.alice.user.id
        ))
        .execute(&mut self.app.db.connect())
        .unwrap();
        browser
    }

    /// The audit rows about alice: (source, action).
    fn audit(&self) -> Vec<(String, String)> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            source: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            action: String,
        }
        diesel::sql_query(format!(
            "SELECT source, action FROM revocations WHERE user_id = '{}' ORDER BY id",
            self.alice.user.id
        ))
        .load::<Row>(&mut self.app.db.connect())
        .unwrap()
        .into_iter()
        .map(|r| (r.source, r.action))
        .collect()
    }

    /// Alice's email and state, deleted or not.
    fn alice_now(&self) -> (String, String) {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            email: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            state: String,
        }
        let row: Row = diesel::sql_query(format!(
            "SELECT email, state FROM users WHERE id = '{}'",
            self.alice.user.id
        ))
        .get_result(&mut self.app.db.connect())
        .unwrap();
        (row.email, row.state)
    }
}

fn accepted(delivered: &Value) {
    assert_eq!(delivered["status"], 202, "{delivered}");
}

#[tokio::test]
async fn okta_session_revoked_signs_the_users_tab_out_live() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();

    // Its `iat` in milliseconds, as Okta writes its times.
    let delivered =
        s.tx.example_with(
            "okta-session-revoked",
            json!({ "iss": IDP, "sub": "00u-alice" }),
            true,
        )
        .await;

    accepted(&delivered);
    assert!(delivered["body"].is_null(), "202 has no body");
    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a live logout");
    assert_eq!(event.name, "logout");
    browser.assert_signed_out().await;
    assert_eq!(s.audit(), [("caep".into(), "revoke".into())]);
}

#[tokio::test]
async fn a_user_session_revoked_keeps_personal_access_tokens_and_credential_change_ends_them() {
    let s = setup().await;
    let (_, pat) = AccessToken::create(&mut *s.app.conn().await, s.alice.user.id, "cli")
        .await
        .unwrap();
    let pat = ual_todo::secret_token::reveal(&pat).to_owned();
    let api = |pat: String| {
        let url = s.app.url("/api/todos");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(pat)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let browser = s.app.signed_in(&s.alice).await;

    accepted(
        &s.tx
            .example(
                "okta-session-revoked",
                json!({ "iss": IDP, "sub": "00u-alice" }),
            )
            .await,
    );
    assert!(!browser.is_signed_in().await);
    assert_eq!(api(pat.clone()).await, StatusCode::OK);

    let browser = s.app.signed_in(&s.alice).await;
    accepted(
        &s.tx
            .example(
                "okta-credential-change",
                json!({ "iss": IDP, "sub": "00u-alice" }),
            )
            .await,
    );
    assert!(!browser.is_signed_in().await);
    assert_eq!(api(pat).await, StatusCode::UNAUTHORIZED);
    let caep = s
        .audit()
        .iter()
        .filter(|(source, _)| source == "caep")
        .count();
    assert_eq!(caep, 2);
}

#[tokio::test]
async fn the_caep_specs_credential_change_example_ends_every_session() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let delivered =
        s.tx.example(
            "caep-credential-change",
            json!({ "iss": IDP, "sub": "00u-alice" }),
        )
        .await;
    accepted(&delivered);
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn a_complex_session_subject_ends_exactly_that_idp_sessions_sessions() {
    let s = setup().await;
    let laptop = s.session_with_sid("sid-laptop").await;
    let phone = s.session_with_sid("sid-phone").await;
    let mut laptop_stream = EventStream::open(&laptop, "/events").await.unwrap();

    let delivered =
        s.tx.example(
            "caep-session-revoked-complex",
            json!({ "sid": "sid-laptop", "iss": IDP, "sub": "00u-alice" }),
        )
        .await;

    accepted(&delivered);
    assert!(!laptop.is_signed_in().await);
    assert!(phone.is_signed_in().await);
    let event = laptop_stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(event.name, "logout");
}

#[tokio::test]
async fn the_caep_specs_simple_opaque_subject_names_the_idp_session() {
    let s = setup().await;
    let laptop = s.session_with_sid("dMTlD|1600802906337.16|16008.16").await;
    let phone = s.session_with_sid("other").await;
    // Sent exactly as printed: its session id is the one the laptop's session holds.
    let delivered = s.tx.example("caep-session-revoked-simple", json!({})).await;
    accepted(&delivered);
    assert!(!laptop.is_signed_in().await);
    assert!(phone.is_signed_in().await);
}

#[tokio::test]
async fn the_caep_specs_user_and_device_subject_ends_every_session_of_the_user() {
    let s = setup().await;
    let laptop = s.session_with_sid("sid-laptop").await;
    let phone = s.session_with_sid("sid-phone").await;

    // The app does not know devices: a revocation for one of the user's devices ends them all.
    let delivered =
        s.tx.example(
            "caep-session-revoked-user-device",
            json!({ "iss": IDP, "sub": "00u-alice" }),
        )
        .await;

    accepted(&delivered);
    assert!(!laptop.is_signed_in().await);
    assert!(!phone.is_signed_in().await);
}

#[tokio::test]
async fn risc_disabled_suspends_enabled_reactivates_and_purged_deletes() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let who = json!({ "iss": IDP, "sub": "00u-alice" });

    accepted(&s.tx.example("risc-account-disabled", who.clone()).await);
    assert!(!browser.is_signed_in().await);
    assert_eq!(s.alice_now().1, "suspended");
    let refused = s
        .app
        .browser()
        .login("alice@acme.test", &s.alice.password)
        .await;
    assert_ne!(
        refused.status(),
        StatusCode::SEE_OTHER,
        "a suspended user cannot sign in"
    );

    // The published account-enabled example names the user by email.
    accepted(
        &s.tx
            .example(
                "risc-account-enabled",
                json!({ "email": "ALICE@acme.test" }),
            )
            .await,
    );
    assert_eq!(s.alice_now().1, "active");
    let browser = s.app.signed_in(&s.alice).await;

    accepted(&s.tx.example("risc-account-purged", who).await);
    assert!(!browser.is_signed_in().await);
    assert_eq!(s.alice_now().1, "deleted");
    let actions: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|(src, _)| src == "risc")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(actions, ["suspend", "reactivate", "delete"]);
}

#[tokio::test]
async fn risc_identifier_changed_updates_the_email_and_audits_it() {
    let s = setup().await;
    let delivered =
        s.tx.example(
            "risc-identifier-changed",
            json!({ "email": "alice@acme.test", "new_email": "alice.new@acme.test" }),
        )
        .await;
    accepted(&delivered);
    assert_eq!(s.alice_now().0, "alice.new@acme.test");
    assert_eq!(s.audit(), [("risc".into(), "update".into())]);
    // Signing in works with the new email.
    let response = s
        .app
        .browser()
        .login("alice.new@acme.test", &s.alice.password)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_email_another_user_has_is_not_taken_over() {
    let s = setup().await;
    s.app.create_user(s.org.id, "bob@acme.test", false).await;
    let delivered =
        s.tx.example(
            "risc-identifier-changed",
            json!({ "email": "alice@acme.test", "new_email": "BOB@acme.test" }),
        )
        .await;
    accepted(&delivered);
    assert_eq!(s.alice_now().0, "alice@acme.test");
}

#[tokio::test]
async fn an_unknown_user_gets_202_nothing_done_and_is_counted() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let delivered =
        s.tx.example(
            "okta-session-revoked",
            json!({ "iss": IDP, "sub": "00u-nobody" }),
        )
        .await;
    accepted(&delivered);
    assert!(browser.is_signed_in().await);
    assert_eq!(count(&s.app.db, "revocations"), 0);
    let metrics = reqwest::get(s.app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"ual_todo_ssf_events_total{event="session-revoked",outcome="unknown_user"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn other_event_types_are_accepted_without_effect() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let delivered =
        s.tx.event(json!({
            "event_type": format!("{CAEP}token-claims-change"),
            "sub_id": { "format": "email", "email": "alice@acme.test" },
            "event": { "claims": { "role": "ro-admin" } },
        }))
        .await;
    accepted(&delivered);
    assert!(browser.is_signed_in().await);
    let stream = crate::ssf_transmitter::counted(&s.app, s.org.id, 1).await;
    assert_eq!(stream.events_received, 1);
    assert!(stream.last_event_at.is_some());
}

#[tokio::test]
async fn a_replayed_set_has_one_effect_and_is_refused() {
    let s = setup().await;
    let _first_browser = s.app.signed_in(&s.alice).await;
    let first =
        s.tx.example(
            "okta-session-revoked",
            json!({ "iss": IDP, "sub": "00u-alice" }),
        )
        .await;
    accepted(&first);
    let browser = s.app.signed_in(&s.alice).await;

    let replay = s.push_token(first["token"].as_str().unwrap()).await;

    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["err"], "invalid_request");
    assert!(
        body["description"].as_str().unwrap().contains("already"),
        "{body}"
    );
    assert!(browser.is_signed_in().await);
    assert_eq!(s.audit().len(), 1);
}

#[tokio::test]
async fn a_failed_effect_leaves_the_set_acceptable_for_the_retry() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    s.app
        .db
        .connect()
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'down'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON revocations FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .unwrap();

    let failed =
        s.tx.example(
            "okta-credential-change",
            json!({ "iss": IDP, "sub": "00u-alice" }),
        )
        .await;
    assert_eq!(failed["status"], 503, "{failed}");
    assert!(browser.is_signed_in().await, "nothing was changed");

    diesel::sql_query("DROP TRIGGER refuse ON revocations")
        .execute(&mut s.app.db.connect())
        .unwrap();
    let retry = s.push_token(failed["token"].as_str().unwrap()).await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn a_push_without_the_streams_authorization_header_is_401() {
    let s = setup().await;
    let fresh = s
        .tx
        .sign(
            &json!({ "iss": s.tx.issuer, "aud": s.stream.audience, "iat": crate::idp::now(), "jti": "fresh",
                     "events": { format!("{CAEP}credential-change"): { "subject": { "format": "email", "email": "alice@acme.test" } } } }),
            Value::Null,
        )
        .await;
    let browser2 = s.app.signed_in(&s.alice).await;
    let header = s.header().await;
    let forged = format!("Bearer ssf_{}", "A".repeat(44));
    let stolen_prefix = format!(
        "{}{}",
        &header[..header.len() - 1],
        if header.ends_with('a') { "b" } else { "a" }
    );
    for authorization in [
        None,
        Some("Basic dXNlcjpwdw=="),
        Some("Bearer ual_nope"),
        Some(forged.as_str()),
        Some(stolen_prefix.as_str()),
    ] {
        let response = s
            .push(&fresh, "application/secevent+jwt", authorization)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["err"], "authentication_failed");
    }
    assert!(browser2.is_signed_in().await);
}

/// Asserts a 400 with RFC 8935 code `err`.
async fn assert_refused(response: reqwest::Response, err: &str, why: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["err"], err, "{why}: {body}");
    assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn every_bad_set_is_refused_with_its_rfc_8935_code_and_changes_nothing() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let good = |jti: &str| {
        json!({
            "iss": s.tx.issuer, "aud": s.stream.audience, "iat": crate::idp::now(), "jti": jti,
            "events": { format!("{CAEP}credential-change"): {
                "subject": { "format": "email", "email": "alice@acme.test" } } },
        })
    };
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = good(&uuid::Uuid::new_v4().to_string());
        change(&mut claims);
        claims
    };
    let cases: Vec<(Value, Value, &str, &str)> = vec![
        (
            with(&|c| c["iss"] = json!("https://evil.example")),
            Value::Null,
            "invalid_issuer",
            "another issuer",
        ),
        (
            with(&|c| c["aud"] = json!("urn:another")),
            Value::Null,
            "invalid_audience",
            "another audience",
        ),
        (
            with(&|c| c["iat"] = json!(crate::idp::now() + 3600)),
            Value::Null,
            "invalid_request",
            "iat in the future",
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Value::Null,
            "invalid_request",
            "no jti",
        ),
        (
            with(&|c| c["events"][format!("{RISC}account-disabled")] = json!({})),
            Value::Null,
            "invalid_request",
            "two events",
        ),
        (
            with(&|c| c["events"] = json!({ format!("{CAEP}credential-change"): {} })),
            Value::Null,
            "invalid_request",
            "no subject",
        ),
        (
            with(&|_| {}),
            json!({ "header": { "typ": "JWT" } }),
            "invalid_request",
            "typ JWT",
        ),
        (
            with(&|_| {}),
            json!({ "header": { "typ": null } }),
            "invalid_request",
            "no typ",
        ),
        (
            with(&|_| {}),
            json!({ "key": "unpublished" }),
            "authentication_failed",
            "another key, same kid",
        ),
        (
            with(&|_| {}),
            json!({ "header": { "kid": "unknown" } }),
            "invalid_key",
            "unknown kid",
        ),
        (
            with(&|_| {}),
            json!({ "alg": "HS256", "secret": "guess" }),
            "invalid_key",
            "HMAC",
        ),
        (
            with(&|_| {}),
            json!({ "alg": "none" }),
            "invalid_request",
            "alg none",
        ),
        (
            with(&|_| {}),
            json!({ "header": { "crit": ["exp"] } }),
            "invalid_request",
            "crit",
        ),
    ];
    for (claims, options, err, why) in cases {
        let token = s.tx.sign(&claims, options).await;
        assert_refused(s.push_token(&token).await, err, why).await;
    }
    let header = s.header().await;
    let token = s.tx.sign(&good("plain-json"), Value::Null).await;
    assert_refused(
        s.push(&token, "application/json", Some(&header)).await,
        "invalid_request",
        "content type",
    )
    .await;
    assert_refused(
        s.push("not a jwt", "application/secevent+jwt", Some(&header))
            .await,
        "invalid_request",
        "garbage",
    )
    .await;
    let huge = "a".repeat(70 * 1024);
    let response = s
        .push(&huge, "application/secevent+jwt", Some(&header))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert!(browser.is_signed_in().await);
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn another_orgs_stream_cannot_touch_this_orgs_users() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;
    let other = s.app.create_org("globex").await;
    let other_stream = configure(&s.app, &s.tx, &other, Delivery::Push).await;
    assert_ne!(other_stream.audience, s.stream.audience);

    // Globex's stream names alice: nobody of globex has that email.
    let delivered =
        s.tx.example(
            "okta-credential-change",
            json!({ "iss": IDP, "sub": "00u-alice" }),
        )
        .await;
    accepted(&delivered);
    assert!(browser.is_signed_in().await);
    // A SET for globex's stream, sent with acme's header, has the wrong audience.
    let token = s
        .tx
        .sign(
            &json!({ "iss": s.tx.issuer, "aud": other_stream.audience, "iat": crate::idp::now(), "jti": "x1",
                     "events": { format!("{CAEP}credential-change"): { "subject": { "format": "email", "email": "alice@acme.test" } } } }),
            Value::Null,
        )
        .await;
    let state = s.tx.state().await;
    let acme_header = state["streams"][0]["delivery"]["authorization_header"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_refused(
        s.push(&token, "application/secevent+jwt", Some(&acme_header))
            .await,
        "invalid_audience",
        "other stream",
    )
    .await;
    assert!(browser.is_signed_in().await);
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn a_disabled_org_is_refused_with_access_denied() {
    let s = setup().await;
    Org::set_disabled(&mut *s.app.conn().await, s.org.id, true)
        .await
        .unwrap();
    let delivered =
        s.tx.example(
            "okta-credential-change",
            json!({ "iss": IDP, "sub": "00u-alice" }),
        )
        .await;
    assert_eq!(delivered["status"], 400);
    assert_eq!(delivered["body"]["err"], "access_denied");
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn a_verification_event_marks_the_stream_verified_with_the_state_asked_for() {
    let s = setup().await;
    let state = ual_todo::ssf::manage::request_verification(
        &mut *s.app.conn().await,
        &crate::ssf_transmitter::http(),
        &crate::ssf_transmitter::secrets(&s.app).await,
        &s.stream,
    )
    .await
    .unwrap();
    let mut verified = None;
    for _ in 0..50 {
        let stream = SsfStream::for_org(&mut *s.app.conn().await, s.org.id)
            .await
            .unwrap()
            .unwrap();
        if stream.verified_at.is_some() {
            verified = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = verified.expect("the verification event arrived");
    assert_eq!(stream.verification_state.as_deref(), Some(state.as_str()));
    // The spec's example, sent on the transmitter's own initiative, is accepted too.
    accepted(
        &s.tx
            .example(
                "ssf-verification",
                json!({ "id": s.stream.stream_id.clone().unwrap() }),
            )
            .await,
    );
}

#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_is_made_to_wait() {
    let s = setup().await;
    let wrong = format!("Bearer ssf_{}", "x".repeat(44));
    for _ in 0..20 {
        let response = s
            .push("x.y.z", "application/secevent+jwt", Some(&wrong))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    let limited = s
        .push("x.y.z", "application/secevent+jwt", Some(&wrong))
        .await;

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["err"], "too_many_requests");
}
