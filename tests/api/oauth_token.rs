//! `POST /oauth/token`: client credentials with a `private_key_jwt` assertion signed by the org's
//! IdP (a real JWKS over HTTP) buys a short-lived SCIM access token.

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ual_todo::{
    db::models::{Org, ScimToken},
    secret_token::{self, Kind},
};

use crate::{
    helpers::{TestApp, assert_json_error, count, spawn_app},
    idp::{self, SigningKey, TestIdp, b64url, now, sign, variant},
};

const TOKEN: &str = "/oauth/token";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ACME_CLIENT: &str = "0oa-acme-scim";
const GLOBEX_CLIENT: &str = "0oa-globex-scim";

/// Two orgs, each trusting its own IdP: acme (RSA key `rsa-1`), globex (`rsa-2`).
struct Setup {
    app: TestApp,
    acme: Org,
    globex: Org,
    acme_idp: TestIdp,
    globex_idp: TestIdp,
}

fn acme_key() -> SigningKey {
    idp::signing_key("rsa", "rsa-1", Algorithm::RS256)
}

fn globex_key() -> SigningKey {
    idp::signing_key("rsa-other", "rsa-2", Algorithm::RS256)
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let acme_idp = TestIdp::start(&[&acme_key()]).await;
    let globex_idp = TestIdp::start(&[&globex_key()]).await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    let s = Setup {
        app,
        acme,
        globex,
        acme_idp,
        globex_idp,
    };
    s.trust(&s.acme, &s.acme_idp, ACME_CLIENT).await;
    s.trust(&s.globex, &s.globex_idp, GLOBEX_CLIENT).await;
    s
}

impl Setup {
    async fn trust(&self, org: &Org, idp: &TestIdp, client_id: &str) {
        Org::set_idp(
            &mut *self.app.conn().await,
            org.id,
            Some((&idp.issuer, client_id)),
        )
        .await
        .unwrap();
    }

    /// The claims of a valid assertion of `client_id`: two minutes to live, a fresh `jti`.
    fn claims(&self, client_id: &str) -> Value {
        json!({
            "iss": client_id,
            "sub": client_id,
            "aud": self.app.url(TOKEN),
            "iat": now(),
            "exp": now() + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// A token request with `assertion` and the other parameters `more`.
    async fn request_with(&self, assertion: &str, more: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(more);
        self.post_form(&form).await
    }

    async fn request(&self, assertion: &str) -> reqwest::Response {
        self.request_with(assertion, &[("scope", "scim")]).await
    }

    async fn post_form(&self, form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.app.url(TOKEN))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The org a SCIM access token authenticates as, if it does.
    async fn org_of(&self, token: &str) -> Option<Org> {
        let presented = secret_token::parse(Kind::ScimToken, token)?;
        ScimToken::authenticate(&mut *self.app.conn().await, &presented)
            .await
            .unwrap()
            .map(|(_, org)| org)
    }

    /// Asserts a 200 and returns the access token.
    async fn granted(&self, response: reqwest::Response) -> String {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["expires_in"], 3600, "{body}");
        assert_eq!(body["scope"], "scim", "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Asserts an RFC 6749 §5.2 `invalid_client` refusal, with its challenge and no detail.
async fn assert_invalid_client(response: reqwest::Response) {
    assert!(response.headers().contains_key("www-authenticate"));
    let description = assert_json_error(
        response,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
    .await;
    assert_eq!(description, "client authentication failed");
}

#[tokio::test]
async fn a_signed_client_assertion_buys_a_scim_token_of_its_org() {
    let s = setup().await;
    let assertion = sign(&acme_key(), None, &s.claims(ACME_CLIENT));

    let token = s.granted(s.request(&assertion).await).await;

    assert!(token.starts_with("scim_"));
    let org = s.org_of(&token).await.expect("the token authenticates");
    assert_eq!(org.id, s.acme.id);
    let mut conn = s.app.conn().await;
    let presented = secret_token::parse(Kind::ScimToken, &token).unwrap();
    let (row, _) = ScimToken::authenticate(&mut conn, &presented)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.client_id.as_deref(), Some(ACME_CLIENT));
    let lifetime = row.expires_at.unwrap() - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::minutes(59) && lifetime <= time::Duration::hours(1));
}

#[tokio::test]
async fn an_access_token_opens_scim_for_its_org_until_it_expires() {
    let s = setup().await;
    s.app.create_user(s.acme.id, "alice@acme.test", false).await;
    s.app
        .create_user(s.globex.id, "carol@globex.test", false)
        .await;
    let token = s
        .granted(
            s.request(&sign(&acme_key(), None, &s.claims(ACME_CLIENT)))
                .await,
        )
        .await;
    let scim = |path: &str| {
        reqwest::Client::new()
            .get(s.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&token)
            .send()
    };

    assert_eq!(
        scim("/ServiceProviderConfig").await.unwrap().status(),
        StatusCode::OK
    );
    let users: Value = scim("/Users").await.unwrap().json().await.unwrap();
    assert_eq!(users["totalResults"], 1, "only acme's users: {users}");
    assert_eq!(users["Resources"][0]["userName"], "alice@acme.test");

    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE scim_tokens SET expires_at = now() - interval '1 second'"),
        &mut s.app.db.connect(),
    )
    .unwrap();
    let expired = scim("/Users").await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let error: Value = expired.json().await.unwrap();
    assert_eq!(error["status"], "401", "a SCIM error: {error}");
}

#[tokio::test]
async fn the_scope_may_be_omitted_and_the_app_itself_is_an_accepted_audience() {
    let s = setup().await;
    let claims = variant(&s.claims(ACME_CLIENT), |c| c["aud"] = json!(s.app.address));
    let assertion = sign(&acme_key(), Some("client-authentication+jwt"), &claims);

    let token = s.granted(s.request_with(&assertion, &[]).await).await;

    assert_eq!(s.org_of(&token).await.unwrap().id, s.acme.id);
}

#[tokio::test]
async fn a_replayed_assertion_gets_no_second_token() {
    let s = setup().await;
    let assertion = sign(&acme_key(), None, &s.claims(ACME_CLIENT));
    s.granted(s.request(&assertion).await).await;

    let replay = s.request(&assertion).await;

    assert_json_error(
        replay,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "already used",
    )
    .await;
    assert_eq!(count(&s.app.db, "scim_tokens"), 1);
}

#[tokio::test]
async fn one_assertion_sent_many_times_at_once_buys_one_token() {
    let s = setup().await;
    let assertion = sign(&acme_key(), None, &s.claims(ACME_CLIENT));

    let answers = futures_util::future::join_all((0..8).map(|_| s.request(&assertion))).await;

    let granted = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(granted, 1);
    assert!(
        answers
            .iter()
            .all(|r| r.status() == StatusCode::OK || r.status() == StatusCode::UNAUTHORIZED)
    );
    assert_eq!(count(&s.app.db, "scim_tokens"), 1);
}

#[tokio::test]
async fn a_refused_scope_does_not_spend_the_assertion() {
    let s = setup().await;
    let assertion = sign(&acme_key(), None, &s.claims(ACME_CLIENT));

    let refused = s.request_with(&assertion, &[("scope", "openid")]).await;

    assert_json_error(refused, StatusCode::BAD_REQUEST, "invalid_scope", "scim").await;
    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
    s.granted(s.request(&assertion).await).await;
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    let s = setup().await;
    for aud in [
        s.app.url("/global-token-revocation"),
        "https://elsewhere.example/oauth/token".to_owned(),
    ] {
        let claims = variant(&s.claims(ACME_CLIENT), |c| c["aud"] = json!(aud));
        assert_invalid_client(s.request(&sign(&acme_key(), None, &claims)).await).await;
    }
    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
}

#[tokio::test]
async fn expired_and_long_lived_assertions_are_refused() {
    let s = setup().await;
    let expired = variant(&s.claims(ACME_CLIENT), |c| {
        c["iat"] = json!(now() - 600);
        c["exp"] = json!(now() - 300);
    });
    let ten_minutes = variant(&s.claims(ACME_CLIENT), |c| c["exp"] = json!(now() + 600));
    let no_exp = variant(&s.claims(ACME_CLIENT), |c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    let no_jti = variant(&s.claims(ACME_CLIENT), |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    for claims in [expired, ten_minutes, no_exp, no_jti] {
        assert_invalid_client(s.request(&sign(&acme_key(), None, &claims)).await).await;
    }
    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
}

#[tokio::test]
async fn an_assertion_signed_by_another_orgs_idp_is_refused() {
    let s = setup().await;
    // globex's IdP claims to be acme's client, and acme's IdP globex's.
    let forged_for_acme = sign(&globex_key(), None, &s.claims(ACME_CLIENT));
    let forged_for_globex = sign(&acme_key(), None, &s.claims(GLOBEX_CLIENT));

    assert_invalid_client(s.request(&forged_for_acme).await).await;
    assert_invalid_client(s.request(&forged_for_globex).await).await;

    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
}

#[tokio::test]
async fn orgs_sharing_a_client_id_are_told_apart_by_their_keys() {
    let s = setup().await;
    s.trust(&s.globex, &s.globex_idp, ACME_CLIENT).await;

    let acme_token = s
        .granted(
            s.request(&sign(&acme_key(), None, &s.claims(ACME_CLIENT)))
                .await,
        )
        .await;
    let globex_token = s
        .granted(
            s.request(&sign(&globex_key(), None, &s.claims(ACME_CLIENT)))
                .await,
        )
        .await;

    assert_eq!(s.org_of(&acme_token).await.unwrap().id, s.acme.id);
    assert_eq!(s.org_of(&globex_token).await.unwrap().id, s.globex.id);
}

#[tokio::test]
async fn an_unknown_client_or_an_issuer_other_than_the_client_is_refused() {
    let s = setup().await;
    let unknown = sign(&acme_key(), None, &s.claims("nobody"));
    // The shape of a Universal Logout JWT: iss is the IdP, not the client.
    let ual_shaped = variant(&s.claims(ACME_CLIENT), |c| {
        c["iss"] = json!(s.acme_idp.issuer)
    });
    let nul = variant(&s.claims(ACME_CLIENT), |c| {
        c["iss"] = json!("a\u{0}b");
        c["sub"] = json!("a\u{0}b");
    });
    // A Universal Logout JWT's type, on otherwise valid claims: one kind of JWT is never another.
    let ual_typed = sign(
        &acme_key(),
        Some("global-token-revocation+jwt"),
        &s.claims(ACME_CLIENT),
    );
    assert_invalid_client(s.request(&ual_typed).await).await;
    for assertion in [
        unknown,
        sign(&acme_key(), None, &ual_shaped),
        sign(&acme_key(), None, &nul),
    ] {
        assert_invalid_client(s.request(&assertion).await).await;
    }
    assert_invalid_client(s.request("not a jwt").await).await;
}

#[tokio::test]
async fn unsigned_and_hmac_assertions_are_refused() {
    let s = setup().await;
    let claims = s.claims(ACME_CLIENT);
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    let unsigned = format!("{header}.{payload}.");
    let hmac = idp::forge_hs256_with_public_key("rsa-1", None, &variant(&claims, |_| {}));

    assert_invalid_client(s.request(&unsigned).await).await;
    assert_invalid_client(s.request(&hmac).await).await;

    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
}

#[tokio::test]
async fn a_disabled_org_gets_no_token() {
    let s = setup().await;
    Org::set_disabled(&mut *s.app.conn().await, s.acme.id, true)
        .await
        .unwrap();

    let response = s
        .request(&sign(&acme_key(), None, &s.claims(ACME_CLIENT)))
        .await;

    assert_json_error(
        response,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        "disabled",
    )
    .await;
    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
}

#[tokio::test]
async fn malformed_requests_get_oauth_errors() {
    let s = setup().await;
    let assertion = sign(&acme_key(), None, &s.claims(ACME_CLIENT));
    let bad = StatusCode::BAD_REQUEST;

    let no_grant = s.post_form(&[("client_assertion", &assertion)]).await;
    assert_json_error(no_grant, bad, "invalid_request", "grant_type").await;
    let password = s.post_form(&[("grant_type", "password")]).await;
    assert_json_error(
        password,
        bad,
        "unsupported_grant_type",
        "client_credentials",
    )
    .await;
    let repeated = s
        .request_with(&assertion, &[("scope", "scim"), ("scope", "scim")])
        .await;
    assert_json_error(repeated, bad, "invalid_request", "repeated").await;
    let json_body = reqwest::Client::new()
        .post(s.app.url(TOKEN))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_json_error(json_body, bad, "invalid_request", "x-www-form-urlencoded").await;
    let get = reqwest::get(s.app.url(TOKEN)).await.unwrap();
    assert_json_error(
        get,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "POST",
    )
    .await;

    // No client authentication, another assertion type, or HTTP Basic instead.
    assert_invalid_client(s.post_form(&[("grant_type", "client_credentials")]).await).await;
    let saml = s
        .post_form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .await;
    assert_invalid_client(saml).await;
    let basic = reqwest::Client::new()
        .post(s.app.url(TOKEN))
        .basic_auth(ACME_CLIENT, Some("secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_invalid_client(basic).await;
    let other_client = s
        .request_with(&assertion, &[("client_id", GLOBEX_CLIENT)])
        .await;
    assert_invalid_client(other_client).await;

    // The assertion survived all of that unspent.
    s.granted(
        s.request_with(&assertion, &[("client_id", ACME_CLIENT)])
            .await,
    )
    .await;
}

#[tokio::test]
async fn an_oversize_body_is_refused_before_it_is_read() {
    let s = setup().await;
    let padding = "x".repeat(9 * 1024);

    let response = s.request_with("x", &[("padding", &padding)]).await;

    assert_json_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        "8192 bytes",
    )
    .await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_made_to_wait() {
    let s = setup().await;
    for _ in 0..20 {
        assert_invalid_client(s.request("not a jwt").await).await;
    }
    let valid = sign(&acme_key(), None, &s.claims(ACME_CLIENT));

    let response = s.request(&valid).await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(count(&s.app.db, "scim_tokens"), 0);
}

#[tokio::test]
async fn the_sweeper_deletes_expired_access_tokens_only() {
    let s = setup().await;
    let assertion = sign(&acme_key(), None, &s.claims(ACME_CLIENT));
    let expired = s.granted(s.request(&assertion).await).await;
    let live = s
        .granted(
            s.request(&sign(&acme_key(), None, &s.claims(ACME_CLIENT)))
                .await,
        )
        .await;
    let (long_lived, _) = ScimToken::create(&mut *s.app.conn().await, s.acme.id)
        .await
        .unwrap();
    let prefix = secret_token::parse(Kind::ScimToken, &expired)
        .unwrap()
        .prefix;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE scim_tokens SET expires_at = now() - interval '1 second' \
             WHERE prefix = '{prefix}'"
        )),
        &mut s.app.db.connect(),
    )
    .unwrap();
    assert!(
        s.org_of(&expired).await.is_none(),
        "expired tokens are refused"
    );

    let swept =
        ual_todo::sweeper::sweep_once(&s.app.pool, std::time::Duration::from_secs(24 * 3600))
            .await
            .unwrap();

    assert_eq!(swept.scim_tokens, 1);
    assert_eq!(count(&s.app.db, "scim_tokens"), 2);
    assert!(s.org_of(&live).await.is_some());
    assert_eq!(
        count(
            &s.app.db,
            &format!("scim_tokens WHERE id = '{}'", long_lived.id)
        ),
        1
    );
}

#[tokio::test]
async fn a_database_outage_is_a_503_the_client_may_retry() {
    let (app, proxy) = crate::outage::app_behind_proxy().await;
    let claims = json!({"iss": ACME_CLIENT, "sub": ACME_CLIENT, "exp": now() + 60});
    // Never verified: the org lookup before any key fetch is what fails.
    let assertion = format!(
        "{}.{}.",
        b64url(br#"{"alg":"RS256"}"#),
        b64url(claims.to_string().as_bytes())
    );
    proxy.cut();

    let response = reqwest::Client::new()
        .post(app.url(TOKEN))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["retry-after"], "5");
    assert_json_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "",
    )
    .await;
}
