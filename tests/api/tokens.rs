//! Personal access tokens: the settings page that issues and revokes them, and the JSON API
//! they open.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Browser, TestApp, assert_is_redirect_to, assert_json_error, count, spawn_app,
};

/// Creates a token through the settings page and returns it, as shown (once) on the page.
async fn create_token(browser: &Browser, name: &str) -> String {
    let response = browser
        .post_form("/settings/tokens", &[("name", name)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page = response.text().await.unwrap();
    let start = page.find("value=\"pat_").expect("the new token is shown") + "value=\"".len();
    page[start..start + 48].to_owned()
}

fn api(app: &TestApp, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().get(app.url("/api/todos"));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn post_todo(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/todos"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_is_shown_once_and_only_its_hash_is_kept() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    let token = create_token(&browser, "laptop script").await;

    let page = browser.page("/settings/tokens").await;
    assert!(page.contains("laptop script"));
    assert!(page.contains(&token[..12]), "the prefix is listed");
    assert!(
        !page.contains(&token),
        "the token itself is never shown again"
    );
    assert_eq!(
        count(
            &app.db,
            &format!("access_tokens WHERE prefix = '{}'", &token[..12])
        ),
        1
    );
    assert_eq!(
        count(
            &app.db,
            &format!(
                "access_tokens WHERE token_hash::text LIKE '%{}%'",
                &token[12..]
            )
        ),
        0
    );
}

#[tokio::test]
async fn the_api_lists_and_creates_the_owners_todos() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let browser = app.signed_in(&alice).await;
    app.signed_in(&bob)
        .await
        .post_form("/todos", &[("title", "bob's")])
        .await;
    let token = create_token(&browser, "cli").await;

    let created = post_todo(&app, &token, r#"{"title":"  from the API  "}"#).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let todo: Value = created.json().await.unwrap();
    assert_eq!(todo["title"], "from the API");
    assert_eq!(todo["done"], false);

    let listed: Value = api(&app, Some(&token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["todos"].as_array().unwrap().len(),
        1,
        "only alice's todos"
    );
    assert_eq!(listed["todos"][0]["title"], "from the API");
    assert!(browser.page("/todos").await.contains("from the API"));
}

#[tokio::test]
async fn the_api_refuses_bad_todos_with_400_and_saves_nothing() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let token = create_token(&app.signed_in(&alice).await, "cli").await;

    assert_json_error(
        post_todo(&app, &token, r#"{"title":"  "}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "empty",
    )
    .await;
    let long = json!({ "title": "x".repeat(501) }).to_string();
    assert_json_error(
        post_todo(&app, &token, &long).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "too long",
    )
    .await;
    assert_json_error(
        post_todo(&app, &token, "not json").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "JSON",
    )
    .await;
    assert_json_error(
        post_todo(&app, &token, r#"{"name":"x"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "JSON",
    )
    .await;
    assert_eq!(count(&app.db, "todos"), 0);
}

#[tokio::test]
async fn missing_unknown_and_revoked_tokens_are_401_json() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let token = create_token(&browser, "cli").await;
    let id: String = {
        use diesel::prelude::*;
        use ual_todo::db::schema::access_tokens;
        access_tokens::table
            .select(access_tokens::id)
            .first::<uuid::Uuid>(&mut app.db.connect())
            .unwrap()
            .to_string()
    };

    let missing = api(&app, None).send().await.unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_json_error(missing, StatusCode::UNAUTHORIZED, "invalid_token", "Bearer").await;
    assert_json_error(
        api(&app, Some(&format!("pat_{}", "x".repeat(44))))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "unknown",
    )
    .await;
    assert_json_error(
        api(&app, Some("nonsense")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "unknown",
    )
    .await;
    assert_eq!(
        api(&app, Some(&token)).send().await.unwrap().status(),
        StatusCode::OK
    );

    assert_is_redirect_to(
        &browser
            .post_form(&format!("/settings/tokens/{id}/revoke"), &[])
            .await,
        "/settings/tokens",
    );

    assert_json_error(
        api(&app, Some(&token)).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "revoked",
    )
    .await;
    assert!(browser.page("/settings/tokens").await.contains("revoked"));
    assert_eq!(
        count(
            &app.db,
            "revocations WHERE source = 'self' AND tokens_revoked = 1 AND sessions_ended = 0"
        ),
        1
    );
    assert!(app.browser().get("/todos").await.status().is_redirection());
    assert!(
        browser.is_signed_in().await,
        "revoking a token keeps the session"
    );
}

#[tokio::test]
async fn another_users_token_cannot_be_revoked() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let alice_token = create_token(&app.signed_in(&alice).await, "cli").await;
    let id: String = {
        use diesel::prelude::*;
        use ual_todo::db::schema::access_tokens;
        access_tokens::table
            .select(access_tokens::id)
            .first::<uuid::Uuid>(&mut app.db.connect())
            .unwrap()
            .to_string()
    };

    let response = app
        .signed_in(&bob)
        .await
        .post_form(&format!("/settings/tokens/{id}/revoke"), &[])
        .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api(&app, Some(&alice_token)).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_needs_a_name() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    assert_is_redirect_to(
        &browser
            .post_form("/settings/tokens", &[("name", "  ")])
            .await,
        "/settings/tokens",
    );

    assert!(
        browser
            .page("/settings/tokens")
            .await
            .contains("Give the token a name")
    );
    assert_eq!(count(&app.db, "access_tokens"), 0);
}

#[tokio::test]
async fn the_settings_page_needs_a_session() {
    let app = spawn_app().await;

    assert_is_redirect_to(&app.browser().get("/settings/tokens").await, "/login");
    assert_is_redirect_to(
        &app.browser()
            .post_form("/settings/tokens", &[("name", "x")])
            .await,
        "/login",
    );
}
