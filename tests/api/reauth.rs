//! "Sign in again" without a logout (IPSIE SL2 re-establish session): the session is kept, its
//! tabs are told live, and it goes on, the same session, once the person has authenticated again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use ual_todo::{
    db::models::RevocationSource,
    revocation::{self, Requester},
};

use crate::{
    helpers::{EventStream, TestApp, assert_is_redirect_to, count, run_cli, spawn_app},
    sso_sl1::setup,
};

fn public_ids(app: &TestApp) -> i64 {
    count(
        &app.db,
        "sessions WHERE user_id IS NOT NULL AND reauth_requested_at IS NULL",
    )
}

#[tokio::test]
async fn a_password_user_asked_to_sign_in_again_goes_on_in_the_same_session() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    browser
        .post_form("/todos", &[("title", "unsaved work")])
        .await;
    let mut stream = EventStream::open(&browser, "/events").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let out = run_cli(
        &app.db,
        &[
            "user",
            "reauth",
            "--org",
            "acme",
            "--email",
            "alice@acme.test",
            "--json",
        ],
        None,
        "warn",
    );

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["sessions"], 1);
    let event = stream
        .next(Duration::from_secs(5))
        .await
        .expect("told live");
    assert_eq!(event.name, "reauth");
    assert!(event.data.contains("sign in again"));
    assert_eq!(
        count(&app.db, "sessions WHERE reauth_requested_at IS NOT NULL"),
        1,
        "kept"
    );
    assert_eq!(
        count(
            &app.db,
            "revocations WHERE source = 'reauth' AND action = 'reauth'"
        ),
        1
    );

    assert_is_redirect_to(
        &browser.get("/todos?page=1").await,
        "/reauth?return=%2Ftodos%3Fpage%3D1",
    );
    assert!(
        browser
            .page("/reauth?return=%2Ftodos%3Fpage%3D1")
            .await
            .contains("Sign in again")
    );
    let wrong = browser
        .post_form(
            "/reauth",
            &[("password", "wrong"), ("return", "/todos?page=1")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = browser
        .post_form(
            "/reauth",
            &[("password", &alice.password), ("return", "/todos?page=1")],
        )
        .await;

    assert_is_redirect_to(&right, "/todos?page=1");
    assert!(browser.page("/todos").await.contains("unsaved work"));
    assert_eq!(public_ids(&app), 1, "the same session, no longer waiting");
    assert_eq!(count(&app.db, "sessions"), 1, "no new session");
}

#[tokio::test]
async fn a_session_waiting_to_sign_in_again_can_still_sign_out() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let by = Requester {
        source: RevocationSource::Reauth,
        ..Requester::COMMAND_LINE
    };
    revocation::require_reauth(&mut *app.conn().await, alice.user.org_id, alice.user.id, by)
        .await
        .unwrap();

    browser.post_form("/logout", &[]).await;

    assert_eq!(count(&app.db, "sessions WHERE user_id IS NOT NULL"), 0);
}

#[tokio::test]
async fn an_sso_user_asked_to_sign_in_again_authenticates_freshly_at_the_idp_and_goes_on() {
    let s = setup(Value::Null, Default::default()).await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );
    let alice = ual_todo::db::models::User::find_by_email(
        &mut *s.app.conn().await,
        s.acme.id,
        "alice@acme.test",
    )
    .await
    .unwrap()
    .unwrap();
    let by = Requester {
        source: RevocationSource::Reauth,
        ..Requester::COMMAND_LINE
    };
    revocation::require_reauth(&mut *s.app.conn().await, s.acme.id, alice.id, by)
        .await
        .unwrap();

    let asked = browser.get("/settings/tokens").await;
    assert_is_redirect_to(&asked, "/reauth?return=%2Fsettings%2Ftokens");
    let to_idp = browser.get("/reauth?return=%2Fsettings%2Ftokens").await;
    let authorize = to_idp.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&s.idp.issuer));
    assert!(
        authorize.contains("prompt=login") && authorize.contains("max_age=0"),
        "{authorize}"
    );
    assert!(
        s.idp.asks_to_sign_in(&authorize).await,
        "a fresh authentication, not the IdP session"
    );
    let callback = s.idp.sign_in_at(&authorize, "alice@acme.test").await;
    let back = browser.client.get(callback).send().await.unwrap();

    assert_is_redirect_to(&back, "/settings/tokens");
    assert_eq!(
        browser.get("/settings/tokens").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        count(&s.app.db, "sessions WHERE user_id IS NOT NULL"),
        1,
        "the same session"
    );
}

#[tokio::test]
async fn signing_in_again_through_the_idp_counts_against_the_start_limit() {
    let s = setup(Value::Null, Default::default()).await;
    let browser = s.app.browser();
    assert_is_redirect_to(
        &s.idp.sign_in(&browser, "acme", "alice@acme.test").await,
        "/todos",
    );
    let alice = ual_todo::db::models::User::find_by_email(
        &mut *s.app.conn().await,
        s.acme.id,
        "alice@acme.test",
    )
    .await
    .unwrap()
    .unwrap();
    let by = Requester {
        source: RevocationSource::Reauth,
        ..Requester::COMMAND_LINE
    };
    revocation::require_reauth(&mut *s.app.conn().await, s.acme.id, alice.id, by)
        .await
        .unwrap();

    let mut refused = None;
    for attempt in 1..=40 {
        let answer = browser.get("/reauth?return=%2Ftodos").await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(answer.headers().contains_key("retry-after"));
            refused = Some(attempt);
            break;
        }
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "attempt {attempt}");
    }

    assert!(
        refused.is_some(),
        "forty starts from one address are not all let through"
    );
    assert!(
        count(&s.app.db, "oidc_logins") <= 30,
        "no more stored sign-ins than the limit"
    );
}
