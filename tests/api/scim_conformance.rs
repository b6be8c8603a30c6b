//! What scim2-tester's conformance run asks of `/scim/v2`, checked here too: 405 on the
//! read-only discovery documents, any `userName`, `POST /.search`, and PATCH that returns
//! exactly what was set (and removes what was removed).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::count,
    scim_client::{Scim, patch_op, scim},
};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

fn at(resource: &Value) -> String {
    resource["meta"]["location"]
        .as_str()
        .unwrap()
        .split("/scim/v2")
        .nth(1)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn discovery_documents_answer_every_other_method_with_a_405_scim_error() {
    let s = scim().await;
    for path in [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/ResourceTypes/User",
        "/Schemas",
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    ] {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            s.send(method.clone(), path, Some(&json!({})))
                .await
                .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
        }
        assert_eq!(s.get(path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_username_that_is_no_email_address_is_the_identifier_whatever_the_emails() {
    let s = scim().await;

    let created = s
        .post(
            "/Users",
            &json!({
                "userName": "  alice.smith ",
                "emails": [{"value": "alice@acme.test", "type": "work", "primary": true}],
            }),
        )
        .await;
    let patched = s
        .patch(
            &at(&created.body),
            &patch_op(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "al@acme.test"}])),
        )
        .await;
    let found = s
        .get("/Users?filter=userName%20eq%20%22ALICE.SMITH%22")
        .await;
    let twin = s.post("/Users", &json!({"userName": "Alice.Smith"})).await;
    let control = s.post("/Users", &json!({"userName": "bob\u{7}"})).await;
    let long = s
        .post("/Users", &json!({"userName": "b".repeat(255)}))
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["userName"], "alice.smith", "trimmed");
    assert_eq!(patched.body["userName"], "alice.smith");
    assert_eq!(patched.body["emails"][0]["value"], "al@acme.test");
    assert_eq!(count(&s.app.db, "users WHERE email = 'alice.smith'"), 1);
    assert_eq!(found.body["totalResults"], 1);
    twin.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    control.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    long.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    assert_eq!(count(&s.app.db, "users"), 1, "nothing else written");
}

/// Two users and a group of one of them.
async fn directory(s: &Scim) -> (Value, Value, Value) {
    let alice = s.create_user("alice@acme.test").await;
    let bob = s.create_user("bob@acme.test").await;
    let group = s
        .post(
            "/Groups",
            &json!({"displayName": "Eng", "members": [{"value": alice["id"]}]}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED);
    (alice, bob, group.body)
}

#[tokio::test]
async fn post_dot_search_answers_as_the_same_query_in_the_url() {
    let s = scim().await;
    let (alice, _bob, group) = directory(&s).await;

    let users = s
        .post(
            "/Users/.search",
            &json!({
                "schemas": [SEARCH],
                "filter": "userName eq \"alice@acme.test\"",
                "attributes": ["userName"],
            }),
        )
        .await;
    let paged = s
        .post("/Users/.search", &json!({"startIndex": 2, "count": 1}))
        .await;
    let groups = s
        .post(
            "/Groups/.search",
            &json!({"schemas": [SEARCH], "excludedAttributes": ["members"]}),
        )
        .await;
    let everything = s.post("/.search", &json!({"schemas": [SEARCH]})).await;
    let second_page = s
        .post("/.search", &json!({"startIndex": 3, "count": 5}))
        .await;
    let only_users = s
        .post(
            "/.search",
            &json!({"filter": "userName eq \"bob@acme.test\""}),
        )
        .await;

    assert_eq!(users.status, StatusCode::OK, "{:?}", users.body);
    assert_eq!(users.body["totalResults"], 1);
    let found = &users.body["Resources"][0];
    assert_eq!(found["id"], alice["id"]);
    assert_eq!(found["userName"], "alice@acme.test");
    assert!(found.get("name").is_none(), "only the attributes asked for");
    assert_eq!(paged.body["totalResults"], 2);
    assert_eq!(paged.body["Resources"].as_array().unwrap().len(), 1);
    assert_eq!(paged.body["startIndex"], 2);
    assert_eq!(groups.body["Resources"][0]["id"], group["id"]);
    assert!(groups.body["Resources"][0].get("members").is_none());
    assert_eq!(everything.body["totalResults"], 3, "users and groups");
    let kinds: Vec<&Value> = everything.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["meta"]["resourceType"])
        .collect();
    assert_eq!(kinds, ["User", "User", "Group"]);
    assert_eq!(second_page.body["Resources"][0]["id"], group["id"]);
    assert_eq!(only_users.body["totalResults"], 1);
}

#[tokio::test]
async fn bad_search_requests_are_400_scim_errors_and_get_is_405() {
    let s = scim().await;
    for body in [
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
        json!({"filter": 7}),
        json!({"filter": "userName co \"a\""}),
        json!({"count": "all"}),
        json!({"attributes": ["a"], "excludedAttributes": ["b"]}),
        json!({"attributes": vec!["x"; 51]}),
        json!([]),
    ] {
        let answer = s.post("/Users/.search", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.body["scimType"].is_string(), "{body}");
    }
    s.get("/Users/.search")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
    s.post("/.search", &json!({"filter": "password eq \"x\""}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, Some("invalidFilter"));
}

#[tokio::test]
async fn a_patch_returns_exactly_the_name_emails_and_members_it_set() {
    let s = scim().await;
    let user = s.post("/Users", &json!({"userName": "carol"})).await.body;
    let group = s.post("/Groups", &json!({"displayName": "Ops"})).await.body;
    let name = json!({"formatted": "Dr. C. King", "familyName": "King", "givenName": "Carol"});
    let emails = json!([{"value": "carol@acme.test", "type": "other", "primary": false}]);
    let member = json!([{
        "value": user["id"],
        "$ref": user["meta"]["location"],
        "type": "Person",
        "display": "Carol K.",
    }]);

    let named = s
        .patch(
            &at(&user),
            &patch_op(json!([
                {"op": "add", "path": "name", "value": name},
                {"op": "add", "path": "emails", "value": emails},
            ])),
        )
        .await;
    let joined = s
        .patch(
            &at(&group),
            &patch_op(json!([{"op": "add", "path": "members", "value": member}])),
        )
        .await;
    let read_user = s.get(&at(&user)).await;
    let read_group = s.get(&at(&group)).await;
    let named_again = s
        .patch(
            &at(&group),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": user["id"], "type": "User"}]}])),
        )
        .await;

    assert_eq!(named.status, StatusCode::OK, "{:?}", named.body);
    for answer in [&named.body, &read_user.body] {
        assert_eq!(answer["name"], name, "formatted as given, not recomputed");
        assert_eq!(answer["emails"], emails, "type and primary as given");
        assert_eq!(answer["userName"], "carol");
    }
    for answer in [&joined.body, &read_group.body] {
        assert_eq!(answer["members"], member, "type and display as given");
    }
    let again = &named_again.body["members"];
    assert_eq!(again.as_array().unwrap().len(), 1);
    assert_eq!(again[0]["type"], "User");
    assert_eq!(
        again[0]["display"], "carol",
        "none given: the member's userName"
    );
}

#[tokio::test]
async fn removing_name_emails_or_active_unassigns_them_and_never_changes_the_state() {
    let s = scim().await;
    let dave = s.local_user("dave@acme.test").await;
    let path = format!("/Users/{}", dave.user.id);
    let suspended = s
        .patch(
            &path,
            &patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(suspended.body["active"], false);

    let removed = s
        .patch(
            &path,
            &patch_op(json!([
                {"op": "remove", "path": "name"},
                {"op": "remove", "path": "emails"},
                {"op": "remove", "path": "active"},
            ])),
        )
        .await;
    let read = s.get(&path).await;
    let sign_in = s
        .app
        .browser()
        .login("dave@acme.test", &dave.password)
        .await;
    let set_again = s
        .patch(
            &path,
            &patch_op(json!([{"op": "add", "path": "active", "value": false}])),
        )
        .await;

    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    for answer in [&removed.body, &read.body] {
        assert!(answer.get("name").is_none(), "{answer}");
        assert!(answer.get("emails").is_none(), "{answer}");
        assert!(answer.get("active").is_none(), "{answer}");
    }
    assert_eq!(
        count(&s.app.db, "users WHERE state = 'suspended'"),
        1,
        "removing `active` reactivates nobody"
    );
    assert_eq!(
        sign_in.status(),
        StatusCode::FORBIDDEN,
        "still refused at sign-in"
    );
    assert_eq!(set_again.body["active"], false, "shown again once set");
}
