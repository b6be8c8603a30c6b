//! Account states: a suspended user is out at every door, whichever door suspended them; a
//! reactivated one is back with their todos; a deleted one is gone, and their email free.

use reqwest::StatusCode;
use serde_json::Value;
use ual_todo::{
    db::{
        ids::AccountState,
        models::{AccessToken, SessionRecord, User},
    },
    revocation::{self, Requester},
};

use crate::helpers::{Browser, TestApp, TestUser, count, email_subject, run_cli, spawn_app};

fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    let out = run_cli(&app.db, args, None, "warn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn suspend(app: &TestApp, email: &str) -> Value {
    cli_json(
        app,
        &[
            "user", "suspend", "--org", "acme", "--email", email, "--json",
        ],
    )
}

fn reactivate(app: &TestApp, email: &str) -> Value {
    cli_json(
        app,
        &[
            "user",
            "reactivate",
            "--org",
            "acme",
            "--email",
            email,
            "--json",
        ],
    )
}

async fn personal_token(app: &TestApp, user: &TestUser) -> String {
    let (_, issued) = AccessToken::create(&mut *app.conn().await, user.user.id, "script")
        .await
        .unwrap();
    ual_todo::secret_token::reveal(&issued).to_owned()
}

async fn api_status(app: &TestApp, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(app.url("/api/todos"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// The sign-in page's answer to `password`.
async fn sign_in_page(app: &TestApp, email: &str, password: &str) -> (StatusCode, String) {
    let answer = app.browser().login(email, password).await;
    (answer.status(), answer.text().await.unwrap())
}

#[tokio::test]
async fn suspending_ends_every_session_and_token_and_keeps_the_user_out() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let laptop = app.signed_in(&alice).await;
    let phone = app.signed_in(&alice).await;
    laptop.post_form("/todos", &[("title", "keep me")]).await;
    let pat = personal_token(&app, &alice).await;

    let out = suspend(&app, "alice@acme.test");

    assert_eq!(out["state"], "suspended");
    assert_eq!(out["sessions_ended"], 2);
    assert_eq!(out["tokens_revoked"], 1);
    laptop.assert_signed_out().await;
    phone.assert_signed_out().await;
    assert_eq!(api_status(&app, &pat).await, StatusCode::UNAUTHORIZED);
    let (status, page) = sign_in_page(&app, "alice@acme.test", &alice.password).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("suspended"), "told after the right password");
    assert_eq!(count(&app.db, "sessions WHERE user_id IS NOT NULL"), 0);
    assert_eq!(
        count(&app.db, "todos WHERE title = 'keep me'"),
        1,
        "todos are kept"
    );
    let audit = format!(
        "revocations WHERE user_id = '{}' AND source = 'operator' AND action = 'suspend' \
         AND detail = '{{\"before\": {{\"state\": \"active\"}}, \"after\": {{\"state\": \"suspended\"}}}}'",
        alice.user.id
    );
    assert_eq!(count(&app.db, &audit), 1, "audited with before and after");
}

#[tokio::test]
async fn a_wrong_password_never_learns_that_an_account_is_suspended() {
    let app = spawn_app().await;
    app.alice().await;
    suspend(&app, "alice@acme.test");

    let (status, page) = sign_in_page(&app, "alice@acme.test", "not-the-password").await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!page.contains("suspended"));
    assert!(page.contains("do not match an account"));
}

#[tokio::test]
async fn a_user_suspended_behind_the_apps_back_is_refused_at_every_door() {
    // Set in the database directly, as another instance or a future door might: each door
    // checks the state itself rather than trusting whoever suspended to have ended everything.
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let pat = personal_token(&app, &admin).await;
    let dashboard = app.signed_in(&admin).await;
    let mut conn = app.conn().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE users SET state = 'suspended' WHERE email = 'admin@acme.test'"),
        &mut *conn,
    )
    .await
    .unwrap();

    assert_eq!(
        api_status(&app, &pat).await,
        StatusCode::UNAUTHORIZED,
        "PAT"
    );
    assert_eq!(
        dashboard.get("/admin").await.status(),
        StatusCode::FORBIDDEN,
        "admin pages"
    );
    let (status, _) = sign_in_page(&app, "admin@acme.test", &admin.password).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "password");
}

#[tokio::test]
async fn a_session_being_created_for_a_suspended_user_is_never_saved() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let mut conn = app.conn().await;
    revocation::set_state(
        &mut conn,
        alice.user.org_id,
        alice.user.id,
        AccountState::Suspended,
        Requester::COMMAND_LINE,
    )
    .await
    .unwrap();
    let state = serde_json::json!({});
    let now = time::OffsetDateTime::now_utc();
    let row = ual_todo::db::models::session::NewSession {
        id: &[7; 32],
        public_id: ual_todo::db::ids::SessionId::new(),
        user_id: Some(alice.user.id),
        org_id: Some(alice.user.org_id),
        state: &state,
        oidc_sid: None,
        user_agent: None,
        ip: None,
        created_at: now,
        last_seen_at: now,
        expires_at: now + time::Duration::hours(1),
        auth_time: None,
        idp_ends_at: None,
        method: None,
        new_device: false,
    };

    let saved = SessionRecord::insert(&mut conn, &row).await.unwrap();

    assert!(!saved);
    assert_eq!(count(&app.db, "sessions"), 0);
}

#[tokio::test]
async fn reactivating_lets_the_user_back_in_with_their_todos_but_nothing_that_ended() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let before = app.signed_in(&alice).await;
    before.post_form("/todos", &[("title", "still here")]).await;
    let pat = personal_token(&app, &alice).await;
    suspend(&app, "alice@acme.test");

    let out = reactivate(&app, "alice@acme.test");

    assert_eq!(out["state"], "active");
    assert_eq!(out["changed"], true);
    before.assert_signed_out().await;
    assert_eq!(
        api_status(&app, &pat).await,
        StatusCode::UNAUTHORIZED,
        "tokens stay revoked"
    );
    let after = app.signed_in(&alice).await;
    assert!(after.page("/todos").await.contains("still here"));
    assert_eq!(
        reactivate(&app, "alice@acme.test")["changed"],
        false,
        "idempotent"
    );
}

#[tokio::test]
async fn universal_logout_answers_204_for_a_suspended_user_and_404_for_a_deleted_one() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let key = app.api_key(alice.user.org_id).await;
    suspend(&app, "alice@acme.test");

    let suspended = app
        .universal_logout(&key, &email_subject("alice@acme.test"))
        .await;
    assert_eq!(suspended.status(), StatusCode::NO_CONTENT);

    let mut conn = app.conn().await;
    let by = Requester::COMMAND_LINE;
    let (org, id) = (alice.user.org_id, alice.user.id);
    revocation::set_state(&mut conn, org, id, AccountState::Deleted, by)
        .await
        .unwrap()
        .unwrap();
    let deleted = app
        .universal_logout(&key, &email_subject("alice@acme.test"))
        .await;
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_users_email_is_free_at_once_and_the_account_is_purged_after_retention() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    app.signed_in(&alice)
        .await
        .post_form("/todos", &[("title", "old")])
        .await;
    let mut conn = app.conn().await;
    let (org, id) = (alice.user.org_id, alice.user.id);
    let deleted = revocation::set_state(
        &mut conn,
        org,
        id,
        AccountState::Deleted,
        Requester::COMMAND_LINE,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(deleted.user.state, AccountState::Deleted);
    assert!(
        User::find(&mut conn, id).await.unwrap().is_none(),
        "invisible"
    );

    let again = app.create_user(org, "alice@acme.test", false).await;
    app.signed_in(&again).await;
    let (status, _) = sign_in_page(&app, "alice@acme.test", &alice.password).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old account cannot sign in"
    );

    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    ual_todo::sweeper::sweep_once(&app.pool, week)
        .await
        .unwrap();
    assert_eq!(
        count(&app.db, "todos WHERE title = 'old'"),
        1,
        "kept during retention"
    );
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE users SET deleted_at = now() - interval '8 days' WHERE state = 'deleted'",
        ),
        &mut *conn,
    )
    .await
    .unwrap();
    let swept = ual_todo::sweeper::sweep_once(&app.pool, week)
        .await
        .unwrap();
    assert_eq!(swept.deleted_users, 1);
    assert_eq!(
        count(&app.db, "todos WHERE title = 'old'"),
        0,
        "purged after retention"
    );
    assert_eq!(count(&app.db, "users"), 1, "the new account stays");
}

/// Makes `acme` an org with single sign-on (issuer, client id and a sealed secret).
async fn with_sso(app: &TestApp) {
    let mut conn = app.conn().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE orgs SET idp_issuer = 'https://idp.example', idp_client_id = 'app', \
             idp_client_secret = '\\x00'::bytea WHERE slug = 'acme'",
        ),
        &mut *conn,
    )
    .await
    .unwrap();
}

async fn break_glass(app: &TestApp, email: &str, on: &str) -> Value {
    cli_json(
        app,
        &[
            "user",
            "break-glass",
            "--org",
            "acme",
            "--email",
            email,
            on,
            "--json",
        ],
    )
}

#[tokio::test]
async fn with_sso_only_break_glass_users_sign_in_with_a_password() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    with_sso(&app).await;

    let (status, page) = sign_in_page(&app, "alice@acme.test", &alice.password).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("single sign-on"));
    let (status, page) = sign_in_page(&app, "alice@acme.test", "wrong").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "nothing told without the password"
    );
    assert!(!page.contains("single sign-on"));

    let out = break_glass(&app, "alice@acme.test", "true").await;
    assert_eq!(out["break_glass"], true);
    assert_eq!(out["sso"], true);
    app.signed_in(&alice).await;

    suspend(&app, "alice@acme.test");
    let (status, page) = sign_in_page(&app, "alice@acme.test", &alice.password).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a suspended break-glass user stays out"
    );
    assert!(page.contains("suspended"));
    let kept = format!("users WHERE id = '{}' AND break_glass", alice.user.id);
    assert_eq!(
        count(&app.db, &kept),
        1,
        "the flag stays for after reactivation"
    );
    assert_eq!(
        count(
            &app.db,
            "revocations WHERE action = 'break_glass' AND source = 'operator'"
        ),
        1
    );
}

#[tokio::test]
async fn orgs_without_sso_sign_in_with_passwords_as_before() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser: Browser = app.signed_in(&alice).await;
    assert!(browser.is_signed_in().await);
}
