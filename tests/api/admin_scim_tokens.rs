//! SCIM tokens on the admin Keys page: issued once, working, revoked, in the admin's org only.

use reqwest::StatusCode;

use crate::helpers::{assert_is_redirect_to, spawn_app};

/// The token the page shows once, in its `new-scim-token` field.
fn shown_token(page: &str) -> String {
    let field = page
        .split("id=\"new-scim-token\"")
        .nth(1)
        .expect("the new token is shown");
    let value = field.split("value=\"").nth(1).unwrap();
    value.split('"').next().unwrap().to_owned()
}

async fn users_status(app: &crate::helpers::TestApp, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(app.url("/scim/v2/Users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn an_admin_issues_a_scim_token_once_and_revokes_it() {
    let app = spawn_app().await;
    let acme = app.create_org("acme").await;
    let admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let dashboard = app.signed_in(&admin).await;
    assert!(
        dashboard
            .page("/admin/keys")
            .await
            .contains("SCIM provisioning")
    );

    let created = dashboard.post_form("/admin/scim-tokens", &[]).await;

    assert_eq!(created.status(), StatusCode::OK);
    let token = shown_token(&created.text().await.unwrap());
    assert!(token.starts_with("scim_"), "{token}");
    assert_eq!(users_status(&app, &token).await, StatusCode::OK);
    let again = dashboard.page("/admin/keys").await;
    assert!(!again.contains(&token), "shown once");
    let prefix = &token[..13];
    assert!(again.contains(prefix), "listed by its prefix");

    let revoked = dashboard
        .post_form(&format!("/admin/scim-tokens/{prefix}/revoke"), &[])
        .await;

    assert_is_redirect_to(&revoked, "/admin/keys");
    assert_eq!(users_status(&app, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn scim_tokens_stay_in_their_org_and_with_its_admins() {
    let app = spawn_app().await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    let acme_admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let globex_admin = app.create_user(globex.id, "admin@globex.test", true).await;
    let alice = app.create_user(acme.id, "alice@acme.test", false).await;
    let created = app
        .signed_in(&acme_admin)
        .await
        .post_form("/admin/scim-tokens", &[])
        .await;
    let token = shown_token(&created.text().await.unwrap());
    let prefix = &token[..13];

    let other_org = app
        .signed_in(&globex_admin)
        .await
        .post_form(&format!("/admin/scim-tokens/{prefix}/revoke"), &[])
        .await;
    let not_admin = app
        .signed_in(&alice)
        .await
        .post_form("/admin/scim-tokens", &[])
        .await;

    assert_eq!(other_org.status(), StatusCode::NOT_FOUND);
    assert_eq!(not_admin.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        users_status(&app, &token).await,
        StatusCode::OK,
        "still live"
    );
}
