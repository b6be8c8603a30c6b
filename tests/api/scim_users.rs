//! SCIM `/Users`: provisioning, every shape of deactivation (each ends sessions and tokens
//! before the answer), reactivation, deletion and re-creation, preconditions and bad input.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Browser, TestUser, count},
    scim_client::{Scim, patch_op, personal_token, scim, send_as, token_works},
};

fn users(id: &Value) -> String {
    format!("/Users/{}", id.as_str().unwrap())
}

#[tokio::test]
async fn a_provisioned_user_is_created_with_its_location_and_etag_and_reads_back() {
    let s = scim().await;

    let created = s
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Carol@Acme.test",
                "externalId": "00u1",
                "name": {"givenName": "Carol", "familyName": "King"},
                "emails": [{"value": "Carol@Acme.test", "primary": true}],
                "title": "an attribute nobody keeps",
            }),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let user = &created.body;
    let location = user["meta"]["location"].as_str().unwrap();
    assert_eq!(created.header("location"), location);
    assert!(location.starts_with(&s.app.address) && location.ends_with(&users(&user["id"])));
    assert_eq!(created.header("etag"), user["meta"]["version"]);
    assert_eq!(created.header("content-type"), "application/scim+json");
    assert_eq!(user["userName"], "Carol@Acme.test");
    assert_eq!(user["name"]["formatted"], "Carol King");
    assert_eq!(
        user["emails"],
        json!([{"value": "Carol@Acme.test", "primary": true}]),
        "as given: no type made up"
    );
    assert_eq!(user["active"], true);
    assert_eq!(user["externalId"], "00u1");
    let read = s.get(&users(&user["id"])).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(&read.body, user);
    assert_eq!(read.header("etag"), user["meta"]["version"]);
    assert_eq!(
        count(
            &s.app.db,
            "users WHERE managed_by = 'scim' AND password_hash IS NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE action = 'create' AND source = 'scim' AND actor LIKE 'scim_%'"
        ),
        1,
        "audited"
    );
}

/// A user with a signed-in browser and a personal access token.
async fn signed_in_with_token(s: &Scim, email: &str) -> (TestUser, Browser, String) {
    let user = s.local_user(email).await;
    let browser = s.app.signed_in(&user).await;
    let token = personal_token(&s.app, &user).await;
    assert!(token_works(&s.app, &token).await);
    (user, browser, token)
}

/// Deactivates alice with `deactivate`, then checks she is out everywhere and cannot get in.
async fn assert_deactivation_ends_everything(deactivate: impl AsyncFnOnce(&Scim, String) -> u16) {
    let s = scim().await;
    let (alice, browser, token) = signed_in_with_token(&s, "alice@acme.test").await;
    let (_bob, bob_browser, _) = signed_in_with_token(&s, "bob@acme.test").await;

    let status = deactivate(&s, alice.user.id.to_string()).await;

    assert!(status == 200 || status == 204, "answered {status}");
    browser.assert_signed_out().await;
    assert!(!token_works(&s.app, &token).await, "the token is revoked");
    let again = s.app.browser();
    again.login(&alice.user.email, &alice.password).await;
    assert!(!again.is_signed_in().await, "alice cannot sign in");
    assert!(bob_browser.is_signed_in().await, "bob is untouched");
    assert_eq!(
        count(
            &s.app.db,
            &format!(
                "revocations WHERE user_id = '{}' AND source = 'scim' AND action IN ('suspend', 'delete') AND sessions_ended = 1 AND tokens_revoked = 1",
                alice.user.id
            )
        ),
        1,
        "audited with what ended"
    );
}

#[tokio::test]
async fn okta_patch_active_false_signs_the_user_out_everywhere() {
    assert_deactivation_ends_everything(async |s, id| {
        let body = patch_op(json!([{"op": "replace", "value": {"active": false}}]));
        let answer = s.patch(&format!("/Users/{id}"), &body).await;
        assert_eq!(answer.body["active"], false);
        answer.status.as_u16()
    })
    .await;
}

#[tokio::test]
async fn entra_patch_active_string_false_signs_the_user_out_everywhere() {
    assert_deactivation_ends_everything(async |s, id| {
        let body = patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}]));
        let answer = s.patch(&format!("/Users/{id}"), &body).await;
        assert_eq!(answer.body["active"], false);
        answer.status.as_u16()
    })
    .await;
}

#[tokio::test]
async fn put_active_false_signs_the_user_out_everywhere() {
    assert_deactivation_ends_everything(async |s, id| {
        let body = json!({"userName": "alice@acme.test", "active": false});
        let answer = s.put(&format!("/Users/{id}"), &body).await;
        assert_eq!(answer.body["active"], false);
        answer.status.as_u16()
    })
    .await;
}

#[tokio::test]
async fn delete_signs_the_user_out_everywhere() {
    assert_deactivation_ends_everything(async |s, id| {
        s.delete(&format!("/Users/{id}")).await.status.as_u16()
    })
    .await;
}

#[tokio::test]
async fn reactivation_lets_the_user_sign_in_again() {
    let s = scim().await;
    let alice = s.local_user("alice@acme.test").await;
    let path = format!("/Users/{}", alice.user.id);
    let off = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(s.patch(&path, &off).await.status, StatusCode::OK);
    let refused = s.app.browser();
    refused.login(&alice.user.email, &alice.password).await;
    assert!(!refused.is_signed_in().await);

    let on = patch_op(json!([{"op": "replace", "path": "active", "value": true}]));
    let answer = s.patch(&path, &on).await;

    assert_eq!(answer.body["active"], true);
    let _browser = s.app.signed_in(&alice).await;
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE action = 'reactivate' AND source = 'scim'"
        ),
        1
    );
}

#[tokio::test]
async fn a_deleted_user_is_gone_and_its_username_can_be_created_again_at_once() {
    let s = scim().await;
    let carol = s.create_user("carol@acme.test").await;

    let deleted = s.delete(&users(&carol["id"])).await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    s.get(&users(&carol["id"]))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    let again = s.delete(&users(&carol["id"])).await;
    again.assert_error(StatusCode::NOT_FOUND, None);
    let listed = s
        .get("/Users?filter=userName%20eq%20%22carol@acme.test%22")
        .await;
    assert_eq!(listed.body["totalResults"], 0);
    let recreated = s.create_user("CAROL@acme.test").await;
    assert_ne!(recreated["id"], carol["id"]);
}

#[tokio::test]
async fn a_duplicate_username_in_any_case_is_409_uniqueness() {
    let s = scim().await;
    s.local_user("dave@acme.test").await;
    let carol = s.create_user("carol@acme.test").await;

    let duplicate = s
        .post("/Users", &json!({"userName": "DAVE@acme.test"}))
        .await;
    let renamed = s
        .patch(
            &users(&carol["id"]),
            &patch_op(json!([{"op": "replace", "path": "userName", "value": "Dave@Acme.test"}])),
        )
        .await;

    duplicate.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    renamed.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(count(&s.app.db, "users"), 2);
    assert_eq!(
        s.get(&users(&carol["id"])).await.body["userName"],
        "carol@acme.test"
    );
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_writes_nothing() {
    let s = scim().await;
    let alice = s.local_user("alice@acme.test").await;
    let browser = s.app.signed_in(&alice).await;
    let path = format!("/Users/{}", alice.user.id);
    let etag = s.get(&path).await.header("etag").to_owned();
    let renamed = json!([{"op": "replace", "path": "displayName", "value": "Al"}]);
    let first = send_as(
        &s.app,
        &s.token,
        Method::PATCH,
        &path,
        Some(&patch_op(renamed)),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_ne!(first.header("etag"), etag, "every write bumps the version");

    let off = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    let stale = send_as(
        &s.app,
        &s.token,
        Method::PATCH,
        &path,
        Some(&off),
        &[("if-match", &etag)],
    )
    .await;
    let put = json!({"userName": "alice@acme.test", "active": false});
    let stale_put = send_as(
        &s.app,
        &s.token,
        Method::PUT,
        &path,
        Some(&put),
        &[("if-match", &etag)],
    )
    .await;
    let stale_delete = send_as(
        &s.app,
        &s.token,
        Method::DELETE,
        &path,
        None,
        &[("if-match", &etag)],
    )
    .await;

    for answer in [stale, stale_put, stale_delete] {
        answer.assert_error(StatusCode::PRECONDITION_FAILED, None);
    }
    assert!(browser.is_signed_in().await, "nothing was written");
    assert_eq!(s.get(&path).await.body["active"], true);
}

#[tokio::test]
async fn a_patch_sets_names_emails_and_ids_and_makes_the_idp_the_manager() {
    let s = scim().await;
    let alice = s.local_user("alice@acme.test").await;
    let path = format!("/Users/{}", alice.user.id);
    let before = s.get(&path).await;
    assert_eq!(
        before.body["userName"], "alice@acme.test",
        "local users are visible"
    );

    let answer = s
        .patch(
            &path,
            &patch_op(json!([
                {"op": "replace", "path": "name.givenName", "value": "Alicia"},
                {"op": "add", "path": "name.familyName", "value": "Smith"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "alicia@acme.test"},
                {"op": "add", "path": "externalId", "value": "00u9"},
                {"op": "replace", "path": "displayName", "value": "Alicia Smith"},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"},
            ])),
        )
        .await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let user = &answer.body;
    assert_eq!(user["name"]["givenName"], "Alicia");
    assert_eq!(user["name"]["familyName"], "Smith");
    assert_eq!(user["userName"], "alicia@acme.test");
    assert_eq!(user["externalId"], "00u9");
    assert_eq!(user["displayName"], "Alicia Smith");
    assert_eq!(count(&s.app.db, "users WHERE managed_by = 'scim'"), 1);
    let by_external = s.get("/Users?filter=externalId%20eq%20%2200u9%22").await;
    assert_eq!(by_external.body["Resources"][0]["id"], user["id"]);
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE action = 'update' AND detail->'before'->>'userName' = 'alice@acme.test' AND detail->'after'->>'userName' = 'alicia@acme.test'"
        ),
        1,
        "audited with before and after"
    );
}

#[tokio::test]
async fn active_false_on_create_makes_a_suspended_user() {
    let s = scim().await;

    let created = s
        .post(
            "/Users",
            &json!({"userName": "erin@acme.test", "active": false}),
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["active"], false);
    assert_eq!(count(&s.app.db, "users WHERE state = 'suspended'"), 1);
}

#[tokio::test]
async fn a_cli_created_user_is_found_by_username_and_lists_are_paged() {
    let s = scim().await;
    s.local_user("alice@acme.test").await;
    for email in ["b@acme.test", "c@acme.test"] {
        s.create_user(email).await;
    }

    let found = s
        .get("/Users?filter=userName%20eq%20%22ALICE@acme.test%22")
        .await;
    let by_email = s
        .get("/Users?filter=emails%5Bvalue%20eq%20%22alice@acme.test%22%5D")
        .await;
    let page = s.get("/Users?startIndex=2&count=1").await;
    let capped = s.get("/Users?count=100000&startIndex=0").await;

    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(found.body["Resources"][0]["userName"], "alice@acme.test");
    assert_eq!(by_email.body["totalResults"], 1);
    assert_eq!(
        page.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(page.body["totalResults"], 3);
    assert_eq!(page.body["startIndex"], 2);
    assert_eq!(page.body["itemsPerPage"], 1);
    assert_eq!(page.body["Resources"][0]["userName"], "b@acme.test");
    assert_eq!(capped.body["itemsPerPage"], 3);
    assert_eq!(capped.body["startIndex"], 1);
}

#[tokio::test]
async fn unsupported_filters_are_400_invalid_filter() {
    let s = scim().await;
    for filter in [
        "userName%20co%20%22a%22",
        "userName%20eq%20%22a%22%20or%20id%20eq%20%22b%22",
        "password%20eq%20%22x%22",
        "%22",
    ] {
        s.get(&format!("/Users?filter={filter}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
    }
}

#[tokio::test]
async fn bad_bodies_are_scim_errors_and_write_nothing() {
    let s = scim().await;
    let raw = |body: &'static str, content_type: &'static str| {
        reqwest::Client::new()
            .post(s.app.url("/scim/v2/Users"))
            .bearer_auth(&s.token)
            .header("content-type", content_type)
            .body(body)
    };
    let send = async |request: reqwest::RequestBuilder| {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON error");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        (status, body["scimType"].clone())
    };

    let bad_json = send(raw("{\"userName\": ", "application/scim+json")).await;
    let control_chars = send(raw("{\"userName\": \"car\\u0007ol\"}", "application/json")).await;
    let wrong_type = send(raw("userName=carol", "application/x-www-form-urlencoded")).await;
    let big = format!(
        "{{\"userName\": \"a@b.c\", \"x\": \"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let too_big = send(
        reqwest::Client::new()
            .post(s.app.url("/scim/v2/Users"))
            .bearer_auth(&s.token)
            .header("content-type", "application/scim+json")
            .body(big),
    )
    .await;
    let bad_patch = s
        .patch(
            &format!("/Users/{}", uuid::Uuid::new_v4()),
            &json!({"Operations": "x"}),
        )
        .await;

    assert_eq!(bad_json, (StatusCode::BAD_REQUEST, json!("invalidSyntax")));
    assert_eq!(
        control_chars,
        (StatusCode::BAD_REQUEST, json!("invalidValue"))
    );
    assert_eq!(wrong_type.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(too_big.0, StatusCode::PAYLOAD_TOO_LARGE);
    bad_patch.assert_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"));
    assert_eq!(count(&s.app.db, "users"), 0);
}

#[tokio::test]
async fn unknown_ids_and_routes_are_scim_404s() {
    let s = scim().await;
    s.get(&format!("/Users/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    s.get("/Users/not-a-uuid")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    s.get("/Nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    s.send(Method::POST, "/Users/x", Some(&json!({})))
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
}
