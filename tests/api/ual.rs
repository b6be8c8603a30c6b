//! Universal Logout: `POST /global-token-revocation`, authenticated by org API keys and by JWTs
//! signed by the org's IdP (served by a real JWKS over HTTP).

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::db::models::{AccessToken, Org, OrgApiKey, User};

use crate::{
    helpers::{
        TestApp, TestUser, UNIVERSAL_LOGOUT, assert_is_redirect_to, assert_json_error, count,
        email_subject as email, spawn_app_with,
    },
    idp::{self, SigningKey, TestIdp, b64url, now, sign},
};

const CLIENT_ID: &str = "ual-todo-client";
const UAL_TYP: Option<&str> = Some("global-token-revocation+jwt");

/// Two orgs, each with an API key: acme (alice, bob) and globex (carol).
struct Setup {
    app: TestApp,
    acme: Org,
    acme_key: String,
    alice: TestUser,
    bob: TestUser,
    globex_key: String,
    carol: TestUser,
}

async fn setup_with(configure: impl FnOnce(&mut ual_todo::config::Settings)) -> Setup {
    let app = spawn_app_with(configure).await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    let alice = app.create_user(acme.id, "alice@acme.test", false).await;
    let bob = app.create_user(acme.id, "bob@acme.test", false).await;
    let carol = app.create_user(globex.id, "carol@globex.test", false).await;
    let acme_key = app.api_key(acme.id).await;
    let globex_key = app.api_key(globex.id).await;
    Setup {
        app,
        acme,
        acme_key,
        alice,
        bob,
        globex_key,
        carol,
    }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

impl Setup {
    async fn call(&self, credential: &str, body: &Value) -> reqwest::Response {
        self.app.universal_logout(credential, body).await
    }

    /// A request shaped by hand: any `Authorization`, any content type, any bytes.
    async fn post(
        &self,
        authorization: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(self.app.url(UNIVERSAL_LOGOUT))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send().await.unwrap()
    }

    /// Trusts `idp` as acme's IdP.
    async fn trust(&self, idp: &TestIdp) {
        Org::set_idp(
            &mut *self.app.conn().await,
            self.acme.id,
            Some((&idp.issuer, CLIENT_ID)),
        )
        .await
        .unwrap();
    }

    fn claims(&self, idp: &TestIdp) -> Value {
        idp::ual_claims(&idp.issuer, CLIENT_ID, &self.app.address)
    }
}

/// Asserts a refusal: the JSON error of `status`, with its code and a Bearer challenge on a 401,
/// whose description contains `words`.
async fn assert_error(response: reqwest::Response, status: StatusCode, words: &str) {
    assert_eq!(response.status(), status, "expected {status} ({words})");
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => "invalid_request",
        StatusCode::UNAUTHORIZED => "invalid_token",
        StatusCode::FORBIDDEN => "access_denied",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNPROCESSABLE_ENTITY => "unable_to_complete",
        other => panic!("no refusal is {other}"),
    };
    assert_json_error(response, status, code, words).await;
}

fn rsa() -> SigningKey {
    idp::signing_key("rsa", "rsa-1", Algorithm::RS256)
}

// ---- API keys ---------------------------------------------------------------------------

#[tokio::test]
async fn an_api_key_ends_every_session_and_token_of_the_user() {
    let s = setup().await;
    let laptop = s.app.signed_in(&s.alice).await;
    let phone = s.app.signed_in(&s.alice).await;
    let bobs = s.app.signed_in(&s.bob).await;
    let carols = s.app.signed_in(&s.carol).await;
    let (_, pat) = AccessToken::create(&mut *s.app.conn().await, s.alice.user.id, "script")
        .await
        .unwrap();
    let pat = ual_todo::secret_token::reveal(&pat).to_owned();
    laptop.post_form("/todos", &[("title", "keep me")]).await;

    let response = s.call(&s.acme_key, &email("alice@acme.test")).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());
    laptop.assert_signed_out().await;
    phone.assert_signed_out().await;
    let api = reqwest::Client::new()
        .get(s.app.url("/api/todos"))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap();
    assert_error(api, StatusCode::UNAUTHORIZED, "revoked").await;
    assert!(
        bobs.is_signed_in().await,
        "other users of the org keep their sessions"
    );
    assert!(
        carols.is_signed_in().await,
        "users of other orgs keep their sessions"
    );
    assert_eq!(
        count(&s.app.db, "todos WHERE title = 'keep me'"),
        1,
        "todos are never touched"
    );
    let prefix = &s.acme_key[..12];
    assert_eq!(
        count(
            &s.app.db,
            &format!(
                "revocations WHERE source = 'ual' AND sessions_ended = 2 AND tokens_revoked = 1 \
                 AND actor = 'api key {prefix}' AND request_id IS NOT NULL AND user_id = '{}'",
                s.alice.user.id
            )
        ),
        1
    );
    assert_eq!(
        count(&s.app.db, "org_api_keys WHERE last_used_at IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn the_user_must_sign_in_again_and_then_works_normally() {
    let s = setup().await;
    let before = s.app.signed_in(&s.alice).await;
    s.call(&s.acme_key, &email("alice@acme.test")).await;

    before.assert_signed_out().await;
    let again = s.app.signed_in(&s.alice).await;
    assert!(again.is_signed_in().await);
}

#[tokio::test]
async fn a_repeated_logout_answers_204_and_is_audited_again() {
    let s = setup().await;

    let first = s.call(&s.acme_key, &email("alice@acme.test")).await;
    let second = s.call(&s.acme_key, &email("alice@acme.test")).await;

    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert_eq!(second.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE source = 'ual' AND sessions_ended = 0"
        ),
        2
    );
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_session_on_every_instance() {
    let s = setup().await;
    let other = ual_todo::startup::Application::build(ual_todo::config::Settings::for_database(
        s.app.db.url.clone(),
    ))
    .await
    .unwrap();
    let other_address = format!("http://127.0.0.1:{}", other.port());
    tokio::spawn(other.run_until_stopped());
    let browser = s.app.signed_in(&s.alice).await;
    let cookie = browser.cookie_header().unwrap();
    let on_other = |cookie: String| {
        let url = format!("{other_address}/todos");
        async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(on_other(cookie.clone()).await, StatusCode::OK);

    s.call(&s.acme_key, &email("alice@acme.test")).await;

    assert_eq!(on_other(cookie).await, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn requests_in_flight_during_the_logout_cannot_keep_the_session() {
    let s = setup().await;
    let browser = s.app.signed_in(&s.alice).await;

    let in_flight: Vec<_> = (0..30).map(|_| browser.get("/todos")).collect();
    let subject = email("alice@acme.test");
    let (_, response) = tokio::join!(
        futures_util::future::join_all(in_flight),
        s.call(&s.acme_key, &subject)
    );
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Every request started after the 204 fails, whatever the in-flight ones did.
    let after: Vec<_> = (0..30).map(|_| browser.get("/todos")).collect();
    for response in futures_util::future::join_all(after).await {
        assert_is_redirect_to(&response, "/login");
    }
    assert_eq!(count(&s.app.db, "sessions"), 0);
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_401() {
    let s = setup().await;
    let body = email("alice@acme.test").to_string();
    let well_formed_unknown = format!("ual_{}", "A".repeat(44));

    assert_error(
        s.post(None, "application/json", body.clone()).await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    )
    .await;
    assert_error(
        s.post(
            Some(&format!("Basic {}", s.acme_key)),
            "application/json",
            body.clone(),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "scheme must be Bearer",
    )
    .await;
    assert_error(
        s.post(Some("Bearer"), "application/json", body.clone())
            .await,
        StatusCode::UNAUTHORIZED,
        "Bearer",
    )
    .await;
    assert_error(
        s.call(&well_formed_unknown, &email("alice@acme.test"))
            .await,
        StatusCode::UNAUTHORIZED,
        "unknown",
    )
    .await;
    assert_error(
        s.call("ual_short", &email("alice@acme.test")).await,
        StatusCode::UNAUTHORIZED,
        "unknown",
    )
    .await;
    assert_error(
        s.call("garbage", &email("alice@acme.test")).await,
        StatusCode::UNAUTHORIZED,
        "neither",
    )
    .await;
    // Same prefix, different secret: the hash comparison refuses it.
    let forged = format!("{}{}", &s.acme_key[..12], "Z".repeat(36));
    assert_error(
        s.call(&forged, &email("alice@acme.test")).await,
        StatusCode::UNAUTHORIZED,
        "unknown",
    )
    .await;
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn a_revoked_key_is_401() {
    let s = setup().await;
    OrgApiKey::revoke(&mut *s.app.conn().await, s.acme.id, &s.acme_key[..12])
        .await
        .unwrap()
        .unwrap();
    let browser = s.app.signed_in(&s.alice).await;

    let response = s.call(&s.acme_key, &email("alice@acme.test")).await;

    assert_error(response, StatusCode::UNAUTHORIZED, "revoked").await;
    assert!(browser.is_signed_in().await);
}

#[tokio::test]
async fn a_disabled_org_is_403() {
    let s = setup().await;
    Org::set_disabled(&mut *s.app.conn().await, s.acme.id, true)
        .await
        .unwrap();

    let response = s.call(&s.acme_key, &email("alice@acme.test")).await;

    assert_error(response, StatusCode::FORBIDDEN, "disabled").await;
}

#[tokio::test]
async fn another_orgs_key_cannot_touch_this_orgs_users() {
    let s = setup().await;
    let alice = s.app.signed_in(&s.alice).await;

    let response = s.call(&s.globex_key, &email("alice@acme.test")).await;
    let by_id = s
        .call(
            &s.globex_key,
            &json!({ "sub_id": { "format": "opaque", "id": s.alice.user.id.to_string() } }),
        )
        .await;

    assert_error(response, StatusCode::NOT_FOUND, "no such user").await;
    assert_error(by_id, StatusCode::NOT_FOUND, "no such user").await;
    assert!(alice.is_signed_in().await, "alice is still signed in");
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn an_unknown_user_is_404() {
    let s = setup().await;

    let response = s.call(&s.acme_key, &email("nobody@acme.test")).await;

    assert_error(response, StatusCode::NOT_FOUND, "no such user").await;
}

#[tokio::test]
async fn malformed_requests_are_400_and_change_nothing() {
    let s = setup().await;
    let alice = s.app.signed_in(&s.alice).await;
    let bearer = format!("Bearer {}", s.acme_key);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text/plain",
            email("alice@acme.test").to_string().into_bytes(),
            "Content-Type: application/json",
        ),
        ("application/json", "not json".into(), "not valid JSON"),
        ("application/json", "[]".into(), "JSON object"),
        ("application/json", "{}".into(), "no sub_id"),
        (
            "application/json",
            r#"{"sub_id":"alice@acme.test"}"#.into(),
            "must be an object",
        ),
        (
            "application/json",
            r#"{"sub_id":{"format":"email"}}"#.into(),
            "needs a email member",
        ),
        (
            "application/json",
            r#"{"sub_id":{"format":"phone_number","phone_number":"+1"}}"#.into(),
            "unsupported subject format",
        ),
        (
            "application/json",
            r#"{"sub_id":{"format":"account","uri":"acct:a@b"}}"#.into(),
            "unsupported subject format",
        ),
        (
            "application/json",
            format!(r#"{{"sub_id":{}}}"#, "[".repeat(5000)).into_bytes(),
            "not valid JSON",
        ),
        (
            "application/json",
            // Not UTF-8 at all.
            b"{\"sub_id\":{\"format\":\"email\",\"email\":\"\xff\xfe\"}}".to_vec(),
            "not valid JSON",
        ),
    ];
    for (content_type, body, words) in cases {
        assert_error(
            s.post(Some(&bearer), content_type, body).await,
            StatusCode::BAD_REQUEST,
            words,
        )
        .await;
    }
    assert!(alice.is_signed_in().await);
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn a_body_over_16_kib_is_413() {
    let s = setup().await;
    let mut big = email("alice@acme.test");
    big["padding"] = json!("x".repeat(17 * 1024));
    let bearer = format!("Bearer {}", s.acme_key);

    let declared = s
        .post(Some(&bearer), "application/json", big.to_string())
        .await;
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(big.to_string())];
    let streamed = reqwest::Client::new()
        .post(s.app.url(UNIVERSAL_LOGOUT))
        .header("Authorization", &bearer)
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();

    assert_error(declared, StatusCode::PAYLOAD_TOO_LARGE, "larger than").await;
    assert_error(streamed, StatusCode::PAYLOAD_TOO_LARGE, "larger than").await;
    assert_eq!(count(&s.app.db, "revocations"), 0);
}

#[tokio::test]
async fn authentication_is_checked_before_the_body() {
    let s = setup().await;

    let response = s
        .post(Some("Bearer nope"), "text/plain", "x".repeat(20_000))
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn other_methods_are_405() {
    let s = setup().await;

    let response = reqwest::get(s.app.url(UNIVERSAL_LOGOUT)).await.unwrap();

    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
}

// ---- Subject formats -------------------------------------------------------------------

#[tokio::test]
async fn every_subject_format_finds_the_user() {
    let s = setup().await;
    User::set_oidc_identity(
        &mut *s.app.conn().await,
        s.alice.user.id,
        "https://idp.acme.test",
        "00u-alice",
    )
    .await
    .unwrap();
    Org::set_idp(
        &mut *s.app.conn().await,
        s.acme.id,
        Some(("https://idp.acme.test", CLIENT_ID)),
    )
    .await
    .unwrap();
    let alice_id = s.alice.user.id.to_string();
    let subjects = [
        email("ALICE@acme.TEST"),
        json!({ "subject": { "format": "email", "email": "alice@acme.test" } }),
        json!({ "sub_id": { "format": "iss_sub", "iss": "https://idp.acme.test", "sub": "00u-alice" } }),
        json!({ "sub_id": { "format": "opaque", "id": alice_id } }),
        json!({ "sub_id": { "format": "aliases", "identifiers": [
            { "format": "phone_number", "phone_number": "+15550100" },
            { "format": "email", "email": "alice@acme.test" },
            { "format": "opaque", "id": alice_id },
        ] } }),
    ];
    for subject in subjects {
        let browser = s.app.signed_in(&s.alice).await;
        let response = s.call(&s.acme_key, &subject).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{subject}");
        browser.assert_signed_out().await;
    }
}

#[tokio::test]
async fn subjects_that_name_nobody_here_are_404() {
    let s = setup().await;
    let carol_id = s.carol.user.id.to_string();
    let subjects = [
        json!({ "sub_id": { "format": "iss_sub", "iss": "https://elsewhere.test", "sub": "00u-alice" } }),
        json!({ "sub_id": { "format": "opaque", "id": "not-a-uuid" } }),
        json!({ "sub_id": { "format": "opaque", "id": carol_id } }),
        // Read with the API key in one statement: only the key's org is searched.
        json!({ "sub_id": { "format": "email", "email": "carol@globex.test" } }),
        json!({ "sub_id": { "format": "email", "email": "nobody@acme.test" } }),
        json!({ "sub_id": { "format": "aliases", "identifiers": [ { "format": "email", "email": "x@acme.test" } ] } }),
    ];
    for subject in subjects {
        assert_error(
            s.call(&s.acme_key, &subject).await,
            StatusCode::NOT_FOUND,
            "no such user",
        )
        .await;
    }
}

#[tokio::test]
async fn aliases_naming_two_users_are_400() {
    let s = setup().await;
    let subject = json!({ "sub_id": { "format": "aliases", "identifiers": [
        { "format": "email", "email": "alice@acme.test" },
        { "format": "email", "email": "bob@acme.test" },
    ] } });

    assert_error(
        s.call(&s.acme_key, &subject).await,
        StatusCode::BAD_REQUEST,
        "different users",
    )
    .await;
}

// ---- 422 --------------------------------------------------------------------------------

#[tokio::test]
async fn a_revocation_that_cannot_complete_is_422_and_writes_nothing() {
    let s = setup().await;
    let idp_key = rsa();
    let idp = TestIdp::start(&[&idp_key]).await;
    s.trust(&idp).await;
    let browser = s.app.signed_in(&s.alice).await;
    // Make ending sessions fail inside the revocation's transaction.
    {
        use diesel::RunQueryDsl as _;
        let mut conn = s.app.db.connect();
        diesel::sql_query(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$",
        )
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query("CREATE TRIGGER refuse BEFORE DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION refuse()")
            .execute(&mut conn)
            .unwrap();
    }
    let jwt = sign(&idp_key, UAL_TYP, &s.claims(&idp));

    let response = s.call(&jwt, &email("alice@acme.test")).await;

    assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "could not be ended",
    )
    .await;
    assert!(browser.is_signed_in().await);
    assert_eq!(
        count(&s.app.db, "revocations") + count(&s.app.db, "seen_jtis"),
        0,
        "nothing written"
    );

    // Once the fault is gone, the IdP's retry with the same JWT succeeds.
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query("DROP TRIGGER refuse ON sessions")
            .execute(&mut s.app.db.connect())
            .unwrap();
    }
    assert_eq!(
        s.call(&jwt, &email("alice@acme.test")).await.status(),
        StatusCode::NO_CONTENT
    );
    browser.assert_signed_out().await;
}

// ---- Signed JWTs --------------------------------------------------------------------------

#[tokio::test]
async fn a_jwt_signed_by_the_orgs_idp_logs_the_user_out() {
    let s = setup().await;
    let keys = [
        rsa(),
        idp::signing_key("rsa", "rsa-pss", Algorithm::PS256),
        idp::signing_key("ec", "ec-1", Algorithm::ES256),
        idp::signing_key("ed25519", "ed-1", Algorithm::EdDSA),
    ];
    let idp = TestIdp::start(&keys.iter().collect::<Vec<_>>()).await;
    s.trust(&idp).await;

    for key in &keys {
        let browser = s.app.signed_in(&s.alice).await;
        let claims = s.claims(&idp);
        let jwt = sign(key, UAL_TYP, &claims);

        let response = s.call(&jwt, &email("alice@acme.test")).await;

        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{:?}", key.alg);
        browser.assert_signed_out().await;
        let actor = format!("jwt {} jti={}", idp.issuer, claims["jti"].as_str().unwrap());
        assert_eq!(
            count(&s.app.db, &format!("revocations WHERE actor = '{actor}'")),
            1
        );
    }
    assert_eq!(idp.fetches(), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn a_replayed_jti_is_401() {
    let s = setup().await;
    let key = rsa();
    let idp = TestIdp::start(&[&key]).await;
    s.trust(&idp).await;
    let jwt = sign(&key, UAL_TYP, &s.claims(&idp));

    assert_eq!(
        s.call(&jwt, &email("alice@acme.test")).await.status(),
        StatusCode::NO_CONTENT
    );
    let replay = s.call(&jwt, &email("bob@acme.test")).await;

    assert_error(replay, StatusCode::UNAUTHORIZED, "already used").await;
    assert_eq!(count(&s.app.db, "revocations"), 1);
}

#[tokio::test]
async fn forged_or_mismatched_jwts_are_401() {
    let s = setup().await;
    let key = rsa();
    let idp = TestIdp::start(&[&key]).await;
    s.trust(&idp).await;
    let alice = s.app.signed_in(&s.alice).await;
    let valid = s.claims(&idp);
    let with = |change: &dyn Fn(&mut Value)| idp::variant(&valid, change);
    let other_key = idp::signing_key("rsa-other", "rsa-1", Algorithm::RS256);
    let unknown_kid = idp::signing_key("rsa", "not-published", Algorithm::RS256);
    let hs256_with_public_key = idp::forge_hs256_with_public_key("rsa-1", UAL_TYP, &with(&|_| {}));
    let alg_none = {
        let header = b64url(br#"{"alg":"none","typ":"global-token-revocation+jwt","kid":"rsa-1"}"#);
        let claims = b64url(with(&|_| {}).to_string().as_bytes());
        format!("{header}.{claims}.")
    };
    let tampered = {
        let jwt = sign(&key, UAL_TYP, &with(&|_| {}));
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        parts[1] = b64url(
            with(&|c| c["sub"] = json!("someone-else"))
                .to_string()
                .as_bytes(),
        );
        parts.join(".")
    };
    let aud = s.app.url(UNIVERSAL_LOGOUT);
    let cases: Vec<(&str, String)> = vec![
        ("bad signature", sign(&other_key, UAL_TYP, &with(&|_| {}))),
        ("tampered claims", tampered),
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hs256_with_public_key),
        (
            "wrong iss",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| c["iss"] = json!("https://evil.test")),
            ),
        ),
        (
            "wrong sub (client id)",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| c["sub"] = json!("another-client")),
            ),
        ),
        (
            "wrong aud",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| c["aud"] = json!("https://elsewhere.test/global-token-revocation")),
            ),
        ),
        (
            "aud for another path",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| c["aud"] = json!(format!("{aud}/x"))),
            ),
        ),
        (
            "expired",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| {
                    c["iat"] = json!(now() - 400);
                    c["exp"] = json!(now() - 100);
                }),
            ),
        ),
        (
            "no exp",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
        ),
        (
            "nbf in the future",
            sign(&key, UAL_TYP, &with(&|c| c["nbf"] = json!(now() + 300))),
        ),
        (
            "iat in the future",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| {
                    c["iat"] = json!(now() + 300);
                    c["exp"] = json!(now() + 500);
                }),
            ),
        ),
        (
            "lives over 10 minutes",
            sign(&key, UAL_TYP, &with(&|c| c["exp"] = json!(now() + 3600))),
        ),
        (
            "no jti",
            sign(
                &key,
                UAL_TYP,
                &with(&|c| {
                    c.as_object_mut().unwrap().remove("jti");
                }),
            ),
        ),
        ("wrong typ", sign(&key, Some("JWT"), &with(&|_| {}))),
        ("no typ", sign(&key, None, &with(&|_| {}))),
        ("unknown kid", sign(&unknown_kid, UAL_TYP, &with(&|_| {}))),
    ];
    for (case, jwt) in cases {
        let response = s.call(&jwt, &email("alice@acme.test")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{case}"
        );
    }
    assert!(
        alice.is_signed_in().await,
        "no forged JWT logged anyone out"
    );
    assert_eq!(count(&s.app.db, "revocations"), 0);
    // The valid token still works after all that.
    let ok = sign(&key, UAL_TYP, &with(&|_| {}));
    assert_eq!(
        s.call(&ok, &email("alice@acme.test")).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_jwt_from_one_orgs_idp_cannot_log_out_another_orgs_user() {
    let s = setup().await;
    let key = rsa();
    let idp = TestIdp::start(&[&key]).await;
    s.trust(&idp).await;
    let carol = s.app.signed_in(&s.carol).await;

    let response = s
        .call(
            &sign(&key, UAL_TYP, &s.claims(&idp)),
            &email("carol@globex.test"),
        )
        .await;

    assert_error(response, StatusCode::NOT_FOUND, "no such user").await;
    assert!(carol.is_signed_in().await);
}

#[tokio::test]
async fn an_unreachable_jwks_is_401() {
    let s = setup().await;
    let key = rsa();
    // A port nobody listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let issuer = format!("http://{closed}");
    Org::set_idp(
        &mut *s.app.conn().await,
        s.acme.id,
        Some((&issuer, CLIENT_ID)),
    )
    .await
    .unwrap();
    let claims = idp::ual_claims(&issuer, CLIENT_ID, &s.app.address);

    let response = s
        .call(&sign(&key, UAL_TYP, &claims), &email("alice@acme.test"))
        .await;

    assert_error(response, StatusCode::UNAUTHORIZED, "cannot be fetched").await;
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_at_most_once_a_minute() {
    let s = setup().await;
    let old = rsa();
    let new = idp::signing_key("ec", "ec-2", Algorithm::ES256);
    let idp = TestIdp::start(&[&old]).await;
    s.trust(&idp).await;
    assert_eq!(
        s.call(
            &sign(&old, UAL_TYP, &s.claims(&idp)),
            &email("alice@acme.test")
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );

    // The IdP rotates its keys right after the app fetched them.
    idp.publish(&[&new]);
    for _ in 0..3 {
        let response = s
            .call(
                &sign(&new, UAL_TYP, &s.claims(&idp)),
                &email("alice@acme.test"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    assert_eq!(
        idp.fetches(),
        1,
        "no re-fetch within a minute of the last one"
    );
}

#[tokio::test]
async fn rotated_keys_are_picked_up_on_an_unknown_kid() {
    let s = setup_with(|settings| settings.jwks_min_refetch = std::time::Duration::from_millis(1))
        .await;
    let old = rsa();
    let new = idp::signing_key("ec", "ec-2", Algorithm::ES256);
    let idp = TestIdp::start(&[&old]).await;
    s.trust(&idp).await;
    assert_eq!(
        s.call(
            &sign(&old, UAL_TYP, &s.claims(&idp)),
            &email("alice@acme.test")
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    idp.publish(&[&new]);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let response = s
        .call(
            &sign(&new, UAL_TYP, &s.claims(&idp)),
            &email("alice@acme.test"),
        )
        .await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(idp.fetches(), 2);
}
