//! Starting single sign-on: only from the app's own sign-in form (another site cannot sign a
//! browser into its org: login CSRF), and bounded per client address.

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

use reqwest::StatusCode;
use time::OffsetDateTime;
use ual_todo::db::models::{OidcLogin, oidc_login::NewOidcLogin};

use crate::{
    helpers::{Browser, count, spawn_app},
    oidc_provider::start_sso,
    sso::setup,
};

/// Whether `response` sends the browser to an identity provider (an SSO start).
fn goes_to_the_idp(response: &reqwest::Response, issuer: &str) -> bool {
    response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.starts_with(issuer))
}

/// Whether `browser` holds an SSO state cookie (a started sign-in).
fn holds_sso_state(browser: &Browser) -> bool {
    let url: reqwest::Url = format!("{}/auth/oidc/callback", browser.base)
        .parse()
        .unwrap();
    use reqwest::cookie::CookieStore as _;
    browser
        .jar
        .cookies(&url)
        .is_some_and(|c| c.to_str().unwrap().contains("ual_todo_sso"))
}

#[tokio::test]
async fn a_cross_site_sso_start_is_refused_and_leaves_the_victims_session_alone() {
    let s = setup().await;
    // The victim is signed in to their own org; the attacker's org `acme` has SSO.
    let globex = s.app.create_org("globex").await;
    let victim = s
        .app
        .create_user(globex.id, "victim@globex.test", false)
        .await;
    let browser = s.app.signed_in(&victim).await;
    let url = |path: &str| format!("{}{path}", browser.base);

    // Another site sends the victim's browser to start SSO: by a link, and by a posted form.
    let by_link = browser
        .client
        .get(url("/auth/oidc/start?org=acme"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Sec-Fetch-Mode", "navigate")
        .send()
        .await
        .unwrap();
    let by_form = browser
        .client
        .post(url("/auth/oidc/start"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Origin", "https://evil.example")
        .form(&[("org", "acme")])
        .send()
        .await
        .unwrap();
    let by_old_browser_form = browser
        .client
        .post(url("/auth/oidc/start"))
        .header("Origin", "https://evil.example")
        .form(&[("org", "acme")])
        .send()
        .await
        .unwrap();

    for (how, response) in [
        ("link", by_link),
        ("form", by_form),
        ("form without Fetch Metadata", by_old_browser_form),
    ] {
        assert!(
            !goes_to_the_idp(&response, &s.idp.issuer),
            "a cross-site start by {how} must not reach the IdP"
        );
        assert!(response.status().is_client_error() || response.status() == StatusCode::OK);
    }
    assert!(!holds_sso_state(&browser), "no sign-in was started");
    assert_eq!(count(&s.app.db, "oidc_logins"), 0);
    let todos = browser.page("/todos").await;
    assert!(todos.contains("victim@globex.test"), "still the victim");
}

#[tokio::test]
async fn the_sign_in_pages_sso_form_posts_to_start_sso_from_the_same_origin() {
    let s = setup().await;
    let browser = s.app.browser();

    let page = browser.page("/login").await;
    let started = start_sso(&browser, "acme").await;

    assert!(
        page.contains(r#"<form method="post" action="/auth/oidc/start""#),
        "the SSO form posts"
    );
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert!(goes_to_the_idp(&started, &s.idp.issuer));
    assert!(holds_sso_state(&browser));
    assert_eq!(count(&s.app.db, "oidc_logins"), 1);
}

#[tokio::test]
async fn sso_starts_are_limited_per_address() {
    let s = setup().await;
    for n in 0..30 {
        let started = start_sso(&s.app.browser(), "acme").await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER, "start {n}");
    }

    let refused = start_sso(&s.app.browser(), "acme").await;

    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&wait), "Retry-After: {wait}");
    assert!(!goes_to_the_idp(&refused, &s.idp.issuer));
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Too many sign-ins were started from your network"),
        "the sign-in page says why"
    );
    assert_eq!(count(&s.app.db, "oidc_logins"), 30, "no more rows");
}

#[tokio::test]
async fn unfinished_sso_sign_ins_are_swept_once_expired() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let now = OffsetDateTime::now_utc();
    {
        let mut conn = app.conn().await;
        for (state, expires_at) in [
            ([1u8; 32], now - time::Duration::seconds(1)),
            ([2u8; 32], now + time::Duration::minutes(10)),
        ] {
            let pending = NewOidcLogin {
                state_hash: &state,
                org_id: org.id,
                nonce: "nonce",
                pkce_verifier: "verifier",
                expires_at,
                max_age: None,
                land_on: None,
                end_others_of: None,
            };
            OidcLogin::create(&mut conn, &pending).await.unwrap();
        }
    }

    ual_todo::sweeper::sweep_once(&app.pool, DAY).await.unwrap();

    assert_eq!(count(&app.db, "oidc_logins"), 1);
    assert_eq!(
        count(&app.db, "oidc_logins WHERE expires_at > now()"),
        1,
        "the sign-in in progress is kept"
    );
}
