//! OIDC Back-Channel Logout: `POST /backchannel-logout` with logout tokens signed by the org's
//! IdP (keys served as a real JWKS over HTTP).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::db::models::{Org, User};

use crate::{
    helpers::{Browser, EventStream, TestApp, TestUser, assert_json_error, count, spawn_app},
    idp::{self, SigningKey, TestIdp, now, sign, sign_with},
};

const CLIENT_ID: &str = "acme-app";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

struct Setup {
    app: TestApp,
    idp: TestIdp,
    key: SigningKey,
    alice: TestUser,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let key = idp::signing_key("rsa", "rsa-1", Algorithm::RS256);
    let idp = TestIdp::start(&[&key]).await;
    let alice = app.alice().await;
    let mut conn = app.conn().await;
    Org::set_idp(&mut conn, alice.user.org_id, Some((&idp.issuer, CLIENT_ID)))
        .await
        .unwrap();
    User::set_oidc_identity(&mut conn, alice.user.id, &idp.issuer, "00u-alice")
        .await
        .unwrap();
    drop(conn);
    Setup {
        app,
        idp,
        key,
        alice,
    }
}

impl Setup {
    /// A browser signed in as alice, its session marked as IdP session `sid`.
    async fn session_with_sid(&self, sid: &str) -> Browser {
        let browser = self.app.signed_in(&self.alice).await;
        use diesel::RunQueryDsl as _;
        diesel::sql_query(format!(
            "UPDATE sessions SET oidc_sid = '{sid}' WHERE oidc_sid IS NULL AND user_id = '{}'",
            self.alice.user.id
        ))
        .execute(&mut self.app.db.connect())
        .unwrap();
        browser
    }

    fn claims(&self, subject: Value) -> Value {
        let mut claims = json!({
            "iss": self.idp.issuer,
            "aud": CLIENT_ID,
            "iat": now(),
            "exp": now() + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
            "events": { EVENT: {} },
        });
        for (k, v) in subject.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    fn token(&self, claims: &Value) -> String {
        sign(&self.key, Some("logout+jwt"), claims)
    }

    async fn post(&self, form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.app.url("/backchannel-logout"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn logout(&self, token: &str) -> reqwest::Response {
        self.post(&[("logout_token", token)]).await
    }
}

/// Asserts the refusal of a logout token (never cached) whose description mentions `words`.
async fn assert_invalid(response: reqwest::Response, words: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{words}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_json_error(response, StatusCode::BAD_REQUEST, "invalid_request", words).await;
}

#[tokio::test]
async fn a_sid_ends_exactly_that_idp_sessions_sessions() {
    let s = setup().await;
    let laptop = s.session_with_sid("sid-laptop").await;
    let phone = s.session_with_sid("sid-phone").await;
    let mut laptop_stream = EventStream::open(&laptop, "/events").await.unwrap();

    let response = s
        .logout(&s.token(&s.claims(json!({ "sid": "sid-laptop" }))))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(!laptop.is_signed_in().await);
    assert!(phone.is_signed_in().await);
    let event = laptop_stream
        .next(Duration::from_secs(5))
        .await
        .expect("a live logout");
    assert_eq!(event.name, "logout");
    assert!(event.data.contains("backchannel"));
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE source = 'backchannel' AND sessions_ended = 1"
        ),
        1
    );
}

#[tokio::test]
async fn a_sub_alone_ends_every_session_of_the_user() {
    let s = setup().await;
    let laptop = s.session_with_sid("sid-laptop").await;
    let phone = s.app.signed_in(&s.alice).await;

    let response = s
        .logout(&s.token(&s.claims(json!({ "sub": "00u-alice" }))))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(!laptop.is_signed_in().await && !phone.is_signed_in().await);
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE source = 'backchannel' AND sessions_ended = 2"
        ),
        1
    );
}

#[tokio::test]
async fn nothing_to_end_is_still_200_and_spends_the_token() {
    let s = setup().await;
    let token = s.token(&s.claims(json!({ "sub": "00u-nobody" })));
    let by_sid = s.token(&s.claims(json!({ "sid": "no-such-sid" })));

    assert_eq!(s.logout(&token).await.status(), StatusCode::OK);
    assert_eq!(s.logout(&by_sid).await.status(), StatusCode::OK);

    assert_invalid(s.logout(&token).await, "already used").await;
    assert_invalid(s.logout(&by_sid).await, "already used").await;
}

#[tokio::test]
async fn every_invalid_logout_token_is_400_and_ends_nothing() {
    let s = setup().await;
    let browser = s.session_with_sid("sid-1").await;
    let valid = s.claims(json!({ "sub": "00u-alice", "sid": "sid-1" }));
    let with = |change: &dyn Fn(&mut Value)| idp::variant(&valid, change);
    let other_key = idp::signing_key("rsa-other", "rsa-1", Algorithm::RS256);
    let hs256 = idp::forge_hs256_with_public_key("rsa-1", Some("JWT"), &with(&|_| {}));
    let cases: Vec<(&str, String)> = vec![
        ("not a JWT", "not-a-jwt".into()),
        (
            "no organisation trusts",
            s.token(&with(&|c| c["iss"] = json!("https://evil.test"))),
        ),
        (
            "no organisation trusts",
            s.token(&with(&|c| c["aud"] = json!("another-client"))),
        ),
        (
            "failed verification",
            sign(&other_key, Some("logout+jwt"), &with(&|_| {})),
        ),
        ("algorithm", hs256),
        (
            "failed verification",
            s.token(&with(&|c| {
                c["iat"] = json!(now() - 600);
                c["exp"] = json!(now() - 300);
            })),
        ),
        (
            "failed verification",
            s.token(&with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "iat is in the future",
            s.token(&with(&|c| {
                c["iat"] = json!(now() + 600);
                c["exp"] = json!(now() + 900);
            })),
        ),
        (
            "jti is required",
            s.token(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
        ),
        (
            "events",
            s.token(&with(&|c| {
                c.as_object_mut().unwrap().remove("events");
            })),
        ),
        (
            "events",
            s.token(&with(&|c| {
                c["events"] = json!({ "http://example.test/other": {} })
            })),
        ),
        (
            "events",
            s.token(&with(&|c| c["events"] = json!({ EVENT: "yes" }))),
        ),
        ("nonce", s.token(&with(&|c| c["nonce"] = json!("n-1")))),
        (
            "neither a sub nor a sid",
            s.token(&with(&|c| {
                let o = c.as_object_mut().unwrap();
                o.remove("sub");
                o.remove("sid");
            })),
        ),
        ("typ", sign(&s.key, Some("at+jwt"), &with(&|_| {}))),
        (
            "crit",
            sign_with(&s.key, Some("logout+jwt"), &with(&|_| {}), |h| {
                h.crit = Some(vec!["exp".into()]);
            }),
        ),
    ];
    for (words, token) in cases {
        assert_invalid(s.logout(&token).await, words).await;
    }
    assert_invalid(s.post(&[("token", "x")]).await, "logout_token").await;
    assert_invalid(s.post(&[("logout_token", "")]).await, "empty").await;
    assert!(browser.is_signed_in().await, "nothing was ended");
    assert_eq!(count(&s.app.db, "revocations"), 0);

    // The same token, valid, works once.
    assert_eq!(
        s.logout(&s.token(&with(&|_| {}))).await.status(),
        StatusCode::OK
    );
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn a_logout_token_for_another_orgs_users_ends_nothing_of_theirs() {
    let s = setup().await;
    let globex = s.app.create_org("globex").await;
    let carol = s
        .app
        .create_user(globex.id, "carol@globex.test", false)
        .await;
    User::set_oidc_identity(
        &mut *s.app.conn().await,
        carol.user.id,
        &s.idp.issuer,
        "00u-carol",
    )
    .await
    .unwrap();
    let carols = s.app.signed_in(&carol).await;

    // acme's IdP names carol's subject: she is not acme's user.
    let response = s
        .logout(&s.token(&s.claims(json!({ "sub": "00u-carol" }))))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(carols.is_signed_in().await);
}
