//! Who may call SCIM: a live SCIM token of an enabled org, which sees and touches that org
//! only. The token CLI, and the discovery documents.

use reqwest::{Method, StatusCode};
use serde_json::json;
use ual_todo::db::models::{Org, ScimToken};

use crate::{
    helpers::{count, run_cli},
    scim_client::{scim, scim_token, send_as},
};

#[tokio::test]
async fn requests_without_a_live_scim_token_are_401_scim_errors() {
    let s = scim().await;
    let alice = s.local_user("alice@acme.test").await;
    let api_key = s.app.api_key(s.org.id).await;
    let pat = crate::scim_client::personal_token(&s.app, &alice).await;
    let revoked = scim_token(&s.app, s.org.id).await;
    ScimToken::revoke(&mut *s.app.conn().await, s.org.id, &revoked[..13])
        .await
        .unwrap()
        .expect("revoked");
    let unknown = format!("scim_{}", "A".repeat(revoked.len() - 5));

    for token in [
        api_key.as_str(),
        pat.as_str(),
        revoked.as_str(),
        unknown.as_str(),
        "",
    ] {
        let answer = send_as(&s.app, token, Method::GET, "/Users", None, &[]).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, None);
        assert_eq!(answer.header("www-authenticate"), "Bearer");
    }
    let answer = send_as(
        &s.app,
        &revoked,
        Method::POST,
        "/Users",
        Some(&json!({"userName": "x@acme.test"})),
        &[],
    )
    .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, None);
    assert_eq!(count(&s.app.db, "users"), 1, "nothing written");
}

#[tokio::test]
async fn a_disabled_orgs_token_is_403() {
    let s = scim().await;
    Org::set_disabled(&mut *s.app.conn().await, s.org.id, true)
        .await
        .unwrap();

    s.get("/Users")
        .await
        .assert_error(StatusCode::FORBIDDEN, None);
}

#[tokio::test]
async fn one_orgs_token_never_sees_or_touches_another_orgs_users_or_groups() {
    let s = scim().await;
    let alice = s.local_user("alice@acme.test").await;
    let browser = s.app.signed_in(&alice).await;
    let group = s
        .post(
            "/Groups",
            &json!({"displayName": "Eng", "members": [{"value": alice.user.id}]}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED);
    let globex = s.app.create_org("globex").await;
    let other = scim_token(&s.app, globex.id).await;
    let as_globex = async |method: Method, path: String, body: Option<serde_json::Value>| {
        send_as(&s.app, &other, method, &path, body.as_ref(), &[]).await
    };
    let user_path = format!("/Users/{}", alice.user.id);
    let group_path = format!("/Groups/{}", group.body["id"].as_str().unwrap());
    let off = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});

    as_globex(Method::GET, user_path.clone(), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    as_globex(Method::PATCH, user_path.clone(), Some(off))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    as_globex(
        Method::PUT,
        user_path.clone(),
        Some(json!({"userName": "alice@acme.test", "active": false})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, None);
    as_globex(Method::DELETE, user_path.clone(), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    as_globex(Method::GET, group_path.clone(), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    as_globex(Method::DELETE, group_path.clone(), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    let listed = as_globex(
        Method::GET,
        "/Users?filter=userName%20eq%20%22alice@acme.test%22".into(),
        None,
    )
    .await;
    let all = as_globex(Method::GET, "/Users".into(), None).await;
    let groups = as_globex(
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22Eng%22".into(),
        None,
    )
    .await;
    let own_group = as_globex(
        Method::POST,
        "/Groups".into(),
        Some(json!({"displayName": "G", "members": [{"value": alice.user.id}]})),
    )
    .await;

    assert_eq!(listed.body["totalResults"], 0);
    assert_eq!(all.body["totalResults"], 0);
    assert_eq!(groups.body["totalResults"], 0);
    own_group.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert!(browser.is_signed_in().await, "alice is untouched");
    assert_eq!(
        s.get(&group_path).await.body["members"][0]["value"],
        alice.user.id.to_string()
    );
    assert_eq!(count(&s.app.db, "groups"), 1);
}

#[tokio::test]
async fn the_cli_creates_lists_and_revokes_scim_tokens() {
    let s = scim().await;
    let json = |args: &[&str]| {
        let output = run_cli(&s.app.db, args, None, "warn");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };

    let created = json(&["scim-token", "create", "--org", "acme", "--json"]);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("scim_") && token.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["org"], "acme");
    assert_eq!(
        send_as(&s.app, &token, Method::GET, "/Users", None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let listed = json(&["scim-token", "list", "--org", "acme", "--json"]);
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2);
    let prefix = created["prefix"].as_str().unwrap();
    json(&["scim-token", "revoke", "--org", "acme", prefix, "--json"]);

    send_as(&s.app, &token, Method::GET, "/Users", None, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
    let set = json(&["org", "set-admin-group", "acme", "App Admins", "--json"]);
    assert_eq!(set["admin_group"], "App Admins");
    assert_eq!(count(&s.app.db, "orgs WHERE admin_group = 'App Admins'"), 1);
    json(&["org", "set-admin-group", "acme", "--clear", "--json"]);
    assert_eq!(count(&s.app.db, "orgs WHERE admin_group IS NULL"), 1);
}

#[tokio::test]
async fn the_discovery_documents_describe_what_is_supported() {
    let s = scim().await;

    let config = s.get("/ServiceProviderConfig").await;
    let types = s.get("/ResourceTypes").await;
    let user_type = s.get("/ResourceTypes/User").await;
    let schemas = s.get("/Schemas").await;
    let user_schema = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;

    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(config.body["bulk"]["supported"], false);
    assert_eq!(config.body["filter"]["maxResults"], 200);
    assert_eq!(config.body["etag"]["supported"], true);
    assert_eq!(
        config.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
    assert_eq!(types.body["totalResults"], 2);
    assert_eq!(user_type.body["endpoint"], "/Users");
    assert_eq!(schemas.body["totalResults"], 2);
    let user_name = &user_schema.body["attributes"][0];
    assert_eq!(user_name["name"], "userName");
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    s.get("/Schemas/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
}

#[tokio::test]
async fn an_oauth_access_token_works_until_it_expires_and_is_audited_by_its_client() {
    let s = scim().await;
    let issue = async |lifetime: time::Duration| {
        let expires = time::OffsetDateTime::now_utc() + lifetime;
        let (_, issued) =
            ScimToken::issue_for_client(&mut *s.app.conn().await, s.org.id, "okta-app", expires)
                .await
                .unwrap();
        ual_todo::secret_token::reveal(&issued).to_owned()
    };
    let live = issue(time::Duration::minutes(5)).await;
    let expired = issue(time::Duration::seconds(-1)).await;

    let created = send_as(
        &s.app,
        &live,
        Method::POST,
        "/Users",
        Some(&json!({"userName": "erin@acme.test"})),
        &[],
    )
    .await;
    let refused = send_as(&s.app, &expired, Method::GET, "/Users", None, &[]).await;

    assert_eq!(created.status, StatusCode::CREATED);
    refused.assert_error(StatusCode::UNAUTHORIZED, None);
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE action = 'create' AND actor = 'oauth:okta-app'"
        ),
        1
    );
}
