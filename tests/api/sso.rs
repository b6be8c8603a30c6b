//! Single sign-on through a real OpenID Provider (npm `oidc-provider`, a separate process):
//! sign-in, linking, creation, every refusal, and logouts that start at the provider.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use ual_todo::{
    db::models::{
        Org, User,
        org::{IdpSettings, SsoPolicy},
    },
    secret_box::SecretBox,
};

use crate::{
    helpers::{Browser, EventStream, TestApp, assert_is_redirect_to, count, spawn_app},
    idp::ual_claims,
    oidc_provider::{OidcProvider, client, start_sso},
};

/// An app whose org `acme` signs in through a provider.
pub struct Setup {
    pub app: TestApp,
    pub idp: OidcProvider,
    pub acme: Org,
}

async fn setup_with(create_users: bool) -> Setup {
    let app = spawn_app().await;
    let idp = OidcProvider::start(
        vec![client(&app, "acme-app")],
        json!({ "alice@acme.test": { "sub": "00u-alice", "email": "alice@acme.test", "email_verified": true } }),
    );
    let acme = app.create_org("acme").await;
    configure(
        &app,
        &acme,
        &idp.issuer,
        "acme-app",
        "acme.test",
        create_users,
    )
    .await;
    Setup { app, idp, acme }
}

pub async fn configure(
    app: &TestApp,
    org: &Org,
    issuer: &str,
    client_id: &str,
    email_domain: &str,
    create_users: bool,
) {
    let mut conn = app.conn().await;
    let (secrets, _) = SecretBox::load(
        &mut conn,
        &ual_todo::config::Settings::for_database(app.db.url.clone()),
    )
    .await
    .unwrap();
    let secret = format!("{client_id}-secret");
    let idp = IdpSettings {
        issuer,
        client_id,
        client_secret: Some(&secret),
        email_domain: Some(Some(email_domain)),
        create_users,
    };
    Org::configure_idp(&mut conn, org.id, &idp, &secrets)
        .await
        .unwrap();
}

pub async fn setup() -> Setup {
    setup_with(true).await
}

/// Starts an SSO sign-in of acme in `browser`; where the app sends it: the provider's
/// authorization URL.
async fn authorize_url(browser: &Browser) -> String {
    let started = start_sso(browser, "acme").await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER, "SSO starts");
    started.headers()["location"].to_str().unwrap().to_owned()
}

/// Starts an SSO sign-in of acme in `browser`; the `state` the app sent to the provider.
async fn start_state(browser: &Browser) -> String {
    let authorize = url::Url::parse(&authorize_url(browser).await).unwrap();
    authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

async fn page_says(response: reqwest::Response, status: StatusCode, words: &str) {
    assert_eq!(response.status(), status, "{words}");
    let page = response.text().await.unwrap();
    assert!(page.contains(words), "the page should say {words:?}");
}

#[tokio::test]
async fn a_first_sso_sign_in_creates_the_user_and_keeps_the_idp_session() {
    let s = setup().await;
    let browser = s.app.browser();

    let answer = s.idp.sign_in(&browser, "acme", "alice@acme.test").await;

    assert_is_redirect_to(&answer, "/todos");
    assert!(browser.page("/todos").await.contains("alice@acme.test"));
    let who = format!(
        "users WHERE org_id = '{}' AND email = 'alice@acme.test' AND oidc_subject = '00u-alice' \
         AND oidc_issuer = '{}' AND password_hash IS NULL",
        s.acme.id, s.idp.issuer
    );
    assert_eq!(count(&s.app.db, &who), 1);
    assert_eq!(
        count(&s.app.db, "sessions WHERE oidc_sid IS NOT NULL"),
        1,
        "the ID token's sid is kept"
    );
    assert_eq!(
        count(&s.app.db, "oidc_logins"),
        0,
        "the sign-in state is spent"
    );
}

/// Lets `acme` link SSO sign-ins to accounts by verified email (off by default).
async fn link_by_email(s: &Setup) {
    let policy = SsoPolicy {
        link_by_email: Some(true),
        ..SsoPolicy::default()
    };
    Org::set_sso_policy(&mut *s.app.conn().await, s.acme.id, &policy)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_existing_account_is_not_linked_by_email_unless_the_org_opts_in() {
    let s = setup().await;
    s.app.create_user(s.acme.id, "alice@acme.test", false).await;
    let browser = s.app.browser();

    let answer = s.idp.sign_in(&browser, "acme", "alice@acme.test").await;

    page_says(answer, StatusCode::FORBIDDEN, "not linked").await;
    assert_eq!(count(&s.app.db, "users WHERE oidc_subject IS NOT NULL"), 0);
    assert_eq!(count(&s.app.db, "users"), 1, "nor is a second account made");
}

#[tokio::test]
async fn an_email_routes_to_its_org_and_an_existing_account_is_linked_when_the_org_opts_in() {
    let s = setup_with(false).await;
    link_by_email(&s).await;
    let alice = s.app.create_user(s.acme.id, "Alice@Acme.test", false).await;
    let browser = s.app.browser();

    let answer = s
        .idp
        .sign_in(&browser, "alice@acme.test", "alice@acme.test")
        .await;

    assert_is_redirect_to(&answer, "/todos");
    let linked = User::find(&mut *s.app.conn().await, alice.user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.oidc_subject.as_deref(), Some("00u-alice"));
    assert_eq!(count(&s.app.db, "users"), 1, "nobody new");
    // Next time the identity alone finds the account.
    let again = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&again, "acme", "alice@acme.test").await,
        "/todos",
    );
}

#[tokio::test]
async fn without_creation_an_unknown_user_is_refused_and_nothing_is_created() {
    let s = setup_with(false).await;
    let browser = s.app.browser();

    let answer = s.idp.sign_in(&browser, "acme", "mallory@acme.test").await;

    page_says(
        answer,
        StatusCode::FORBIDDEN,
        "There is no account for you at acme",
    )
    .await;
    assert_eq!(count(&s.app.db, "users"), 0);
    assert_eq!(count(&s.app.db, "sessions"), 0);
}

#[tokio::test]
async fn unknown_or_unconfigured_orgs_say_so_on_the_sign_in_page() {
    let s = setup().await;
    s.app.create_org("globex").await; // no IdP

    for org in ["nope", "globex", "someone@unknown.test"] {
        let answer = start_sso(&s.app.browser(), org).await;
        page_says(
            answer,
            StatusCode::NOT_FOUND,
            "No organisation signs in with single sign-on",
        )
        .await;
    }
    let empty = start_sso(&s.app.browser(), "").await;
    page_says(empty, StatusCode::BAD_REQUEST, "Enter your work email").await;
}

#[tokio::test]
async fn a_callback_from_another_browser_or_a_replay_is_refused() {
    let s = setup().await;
    let browser = s.app.browser();
    let authorize = authorize_url(&browser).await;
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    callback_is_refused_elsewhere_and_when_replayed(&s.app, &browser, &callback).await;
}

/// A provider's `callback` for `browser`: refused in another browser (no state cookie), while
/// the attempt stays usable for its owner, and refused when replayed (the state is spent).
pub(crate) async fn callback_is_refused_elsewhere_and_when_replayed(
    app: &TestApp,
    browser: &Browser,
    callback: &str,
) {
    let stranger = app.browser().client.get(callback).send().await.unwrap();
    page_says(
        stranger,
        StatusCode::BAD_REQUEST,
        "expired or was already used",
    )
    .await;

    let owner = browser.client.get(callback).send().await.unwrap();
    assert_is_redirect_to(&owner, "/todos");

    let replay = browser.client.get(callback).send().await.unwrap();
    page_says(
        replay,
        StatusCode::BAD_REQUEST,
        "expired or was already used",
    )
    .await;
    assert_eq!(count(&app.db, "sessions"), 1);
}

#[tokio::test]
async fn a_wrong_or_expired_state_is_refused() {
    let s = setup().await;
    let browser = s.app.browser();
    let authorize = authorize_url(&browser).await;
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;

    let wrong = browser
        .client
        .get(callback.replace("state=", "state=x"))
        .send()
        .await
        .unwrap();
    page_says(
        wrong,
        StatusCode::BAD_REQUEST,
        "expired or was already used",
    )
    .await;
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query("UPDATE oidc_logins SET expires_at = now() - interval '1 second'")
            .execute(&mut s.app.db.connect())
            .unwrap();
    }
    let expired = browser.client.get(&callback).send().await.unwrap();
    page_says(
        expired,
        StatusCode::BAD_REQUEST,
        "expired or was already used",
    )
    .await;
    assert_eq!(count(&s.app.db, "users") + count(&s.app.db, "sessions"), 0);
}

#[tokio::test]
async fn an_id_token_with_the_wrong_nonce_is_refused() {
    let s = setup().await;
    let browser = s.app.browser();
    let authorize = authorize_url(&browser).await;
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query("UPDATE oidc_logins SET nonce = 'not-the-nonce'")
            .execute(&mut s.app.db.connect())
            .unwrap();
    }

    let answer = browser.client.get(&callback).send().await.unwrap();

    page_says(answer, StatusCode::UNAUTHORIZED, "could not be completed").await;
    assert_eq!(count(&s.app.db, "users") + count(&s.app.db, "sessions"), 0);
}

#[tokio::test]
async fn an_idp_error_is_shown_and_nothing_is_created() {
    let s = setup().await;
    let browser = s.app.browser();
    let state = start_state(&browser).await;

    let answer = browser
        .get(&format!(
            "/auth/oidc/callback?error=access_denied&error_description=%3Cscript%3E&state={state}"
        ))
        .await;

    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let page = answer.text().await.unwrap();
    assert!(page.contains("The sign-in was cancelled or refused at your organisation"));
    assert!(!page.contains("<script>"));

    // Other error codes are named (and cleaned of anything but a code's characters).
    let state = start_state(&browser).await;
    let other = browser
        .get(&format!(
            "/auth/oidc/callback?error=login_required%3Cb%3E&state={state}"
        ))
        .await;
    let page = other.text().await.unwrap();
    assert!(page.contains("did not sign you in (login_requiredb)"));
    assert_eq!(count(&s.app.db, "users"), 0);
}

#[tokio::test]
async fn a_code_from_another_orgs_idp_is_refused() {
    let s = setup().await;
    let other = OidcProvider::start(vec![client(&s.app, "globex-app")], json!({}));
    let globex = s.app.create_org("globex").await;
    configure(
        &s.app,
        &globex,
        &other.issuer,
        "globex-app",
        "globex.test",
        true,
    )
    .await;
    let browser = s.app.browser();
    // Start at acme, but come back with a code issued by globex's provider.
    let acme_authorize = url::Url::parse(&authorize_url(&browser).await).unwrap();
    let mut globex_authorize = url::Url::parse(&format!("{}/auth", other.issuer)).unwrap();
    let pairs: Vec<(String, String)> = acme_authorize
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "client_id" {
                "globex-app".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect();
    globex_authorize.query_pairs_mut().extend_pairs(pairs);
    let callback = other
        .sign_in_at(globex_authorize.as_str(), "eve@globex.test")
        .await;

    let answer = browser.client.get(&callback).send().await.unwrap();

    page_says(answer, StatusCode::UNAUTHORIZED, "could not be completed").await;
    assert_eq!(count(&s.app.db, "users") + count(&s.app.db, "sessions"), 0);
}

#[tokio::test]
async fn signing_out_at_the_idp_ends_the_session_live_through_back_channel_logout() {
    let s = setup().await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );
    let password_session = s.app.browser();
    let alice = User::find_by_email(&mut *s.app.conn().await, s.acme.id, "alice@acme.test")
        .await
        .unwrap()
        .unwrap();
    {
        let hash = ual_todo::auth::password::hash("a long enough secret").unwrap();
        let mut conn = s.app.conn().await;
        User::set_password_hash(&mut conn, alice.id, &hash)
            .await
            .unwrap();
        // A password in an org with SSO is for break-glass users only.
        let by = ual_todo::revocation::Requester::COMMAND_LINE;
        ual_todo::revocation::set_break_glass(&mut conn, s.acme.id, alice.id, true, by)
            .await
            .unwrap();
    }
    assert_is_redirect_to(
        &password_session
            .login("alice@acme.test", "a long enough secret")
            .await,
        "/todos",
    );
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    s.idp.sign_out().await;

    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a live logout");
    assert_eq!(event.name, "logout");
    assert!(event.data.contains("backchannel"));
    browser.assert_signed_out().await;
    assert!(
        password_session.is_signed_in().await,
        "only that IdP session ended"
    );
    assert_eq!(
        count(&s.app.db, "revocations WHERE source = 'backchannel'"),
        1
    );
    // Getting back in means going through the IdP again.
    let again = s.app.browser();
    assert!(authorize_url(&again).await.starts_with(&s.idp.issuer));
}

#[tokio::test]
async fn a_universal_logout_jwt_signed_with_the_providers_real_key_works() {
    let s = setup().await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );
    let jwt = s
        .idp
        .sign(
            json!({ "typ": "global-token-revocation+jwt" }),
            ual_claims(&s.idp.issuer, "acme-app", &s.app.address),
        )
        .await;

    let answer = s
        .app
        .universal_logout(
            &jwt,
            &json!({ "sub_id": { "format": "iss_sub", "iss": s.idp.issuer, "sub": "00u-alice" } }),
        )
        .await;

    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    browser.assert_signed_out().await;
}

#[tokio::test]
async fn a_suspended_user_is_refused_even_with_a_valid_id_token() {
    let s = setup().await;
    let first = s.app.browser();
    s.idp.sign_in(&first, "acme", "alice@acme.test").await;
    let mut conn = s.app.conn().await;
    let alice = User::find_by_email(&mut conn, s.acme.id, "alice@acme.test")
        .await
        .unwrap()
        .unwrap();
    ual_todo::revocation::set_state(
        &mut conn,
        s.acme.id,
        alice.id,
        ual_todo::db::ids::AccountState::Suspended,
        ual_todo::revocation::Requester::COMMAND_LINE,
    )
    .await
    .unwrap();
    first.assert_signed_out().await;

    let again = s.app.browser();
    let answer = s.idp.sign_in(&again, "acme", "alice@acme.test").await;

    page_says(answer, StatusCode::FORBIDDEN, "suspended").await;
    assert!(!again.is_signed_in().await);
}
