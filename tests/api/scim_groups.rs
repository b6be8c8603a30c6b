//! SCIM `/Groups`: members of the same org only, Okta and Entra membership changes, and the
//! admin role from the org's admin group (IPSIE AL2): joining makes an admin, leaving closes
//! the admin's live feed at once.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ual_todo::db::models::Org;

use crate::{
    admin_roles::{is_admin, wait_for},
    helpers::{EventStream, count},
    scim_client::{Scim, patch_op, scim, send_as},
};

fn group_path(group: &Value) -> String {
    format!("/Groups/{}", group["id"].as_str().unwrap())
}

fn member_ids(group: &Value) -> Vec<String> {
    group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect()
}

async fn create_group(s: &Scim, name: &str, members: &[&Value]) -> Value {
    let members: Vec<_> = members.iter().map(|id| json!({"value": id})).collect();
    let created = s
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
                "members": members,
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body
}

#[tokio::test]
async fn groups_are_created_filtered_and_their_members_changed_as_okta_and_entra_do() {
    let s = scim().await;
    let a = s.create_user("a@acme.test").await;
    let b = s.create_user("b@acme.test").await;
    let c = s.create_user("c@acme.test").await;
    let group = create_group(&s, "Engineering", &[&a["id"]]).await;
    let path = group_path(&group);

    let found = s
        .get("/Groups?filter=displayName%20eq%20%22engineering%22")
        .await;
    let slim = s.get("/Groups?excludedAttributes=members").await;
    let added = s
        .patch(&path, &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": b["id"]}, {"value": c["id"]}]}])))
        .await;
    let entra_removed = s
        .patch(&path, &patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{}\"]", a["id"].as_str().unwrap())}])))
        .await;
    let renamed = s
        .patch(
            &path,
            &patch_op(json!([{"op": "replace", "value": {"displayName": "Eng"}}])),
        )
        .await;
    let user = s
        .get(&format!("/Users/{}", b["id"].as_str().unwrap()))
        .await;
    let replaced = s
        .put(
            &path,
            &json!({"displayName": "Eng", "members": [{"value": c["id"]}]}),
        )
        .await;

    assert_eq!(found.body["totalResults"], 1);
    assert_eq!(
        found.body["Resources"][0]["members"][0]["display"],
        "a@acme.test"
    );
    assert!(slim.body["Resources"][0].get("members").is_none());
    assert_eq!(member_ids(&added.body).len(), 3);
    assert_eq!(member_ids(&entra_removed.body).len(), 2);
    assert_eq!(renamed.body["displayName"], "Eng");
    assert_ne!(renamed.header("etag"), added.header("etag"));
    assert_eq!(user.body["groups"][0]["display"], "Eng");
    assert_eq!(member_ids(&replaced.body), [c["id"].as_str().unwrap()]);
    let duplicate = s.post("/Groups", &json!({"displayName": "ENG"})).await;
    duplicate.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    assert_eq!(s.delete(&path).await.status, StatusCode::NO_CONTENT);
    s.get(&path).await.assert_error(StatusCode::NOT_FOUND, None);
    assert_eq!(count(&s.app.db, "group_members"), 0);
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE source = 'scim' AND detail->>'membership' = 'joined'"
        ),
        3,
        "each membership change is audited on the user"
    );
    assert_eq!(
        count(
            &s.app.db,
            "revocations WHERE source = 'scim' AND detail->>'membership' = 'left'"
        ),
        3
    );
}

#[tokio::test]
async fn members_from_another_org_or_unknown_are_400_and_nothing_is_written() {
    let s = scim().await;
    let a = s.create_user("a@acme.test").await;
    let globex = s.app.create_org("globex").await;
    let carol = s
        .app
        .create_user(globex.id, "carol@globex.test", false)
        .await;
    let group = create_group(&s, "Eng", &[&a["id"]]).await;
    let path = group_path(&group);

    let foreign = s
        .patch(
            &path,
            &patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "Renamed"},
                {"op": "add", "path": "members", "value": [{"value": carol.user.id}]},
            ])),
        )
        .await;
    let unknown = s
        .post(
            "/Groups",
            &json!({"displayName": "New", "members": [{"value": uuid::Uuid::new_v4()}]}),
        )
        .await;
    let garbage = s
        .post(
            "/Groups",
            &json!({"displayName": "New", "members": [{"value": "1 OR 1=1"}]}),
        )
        .await;

    for answer in [foreign, unknown, garbage] {
        answer.assert_error(StatusCode::BAD_REQUEST, Some("invalidValue"));
    }
    let after = s.get(&path).await.body;
    assert_eq!(after["displayName"], "Eng", "nothing half-written");
    assert_eq!(member_ids(&after), [a["id"].as_str().unwrap()]);
    assert_eq!(count(&s.app.db, "groups"), 1);
}

/// acme with "App Admins" as its admin group, its first admin, and alice.
async fn with_admin_group(s: &Scim) {
    Org::set_admin_group(&mut *s.app.conn().await, s.org.id, Some("App Admins"))
        .await
        .unwrap();
}

#[tokio::test]
async fn joining_the_admin_group_makes_an_admin_and_leaving_closes_the_admin_feed() {
    let s = scim().await;
    with_admin_group(&s).await;
    let _founder = s.app.create_user(s.org.id, "founder@acme.test", true).await;
    let alice = s.local_user("alice@acme.test").await;
    let group = create_group(&s, "app admins", &[&json!(alice.user.id)]).await;
    assert!(is_admin(&s.app, &alice).await, "joining makes an admin");
    let browser = s.app.signed_in(&alice).await;
    let mut feed = EventStream::open(&browser, "/admin/events").await.unwrap();
    wait_for(&s.app.hub, 1).await;

    let removed = s
        .patch(
            &group_path(&group),
            &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", alice.user.id)}])),
        )
        .await;

    assert_eq!(removed.status, StatusCode::OK);
    assert!(!is_admin(&s.app, &alice).await);
    // Generous windows: the machine running the tests may be busy.
    let event = feed.next(Duration::from_secs(5)).await;
    assert_eq!(event.map(|e| e.name).as_deref(), Some("demoted"));
    assert!(
        feed.closes(Duration::from_secs(5)).await,
        "and the feed closes"
    );
    assert_eq!(
        count(
            &s.app.db,
            &format!(
                "revocations WHERE user_id = '{}' AND source = 'scim' AND action IN ('grant_admin', 'remove_admin')",
                alice.user.id
            )
        ),
        2,
        "both audited"
    );
}

#[tokio::test]
async fn renaming_or_deleting_the_admin_group_removes_the_role_even_from_the_last_admin() {
    let s = scim().await;
    with_admin_group(&s).await;
    let alice = s.local_user("alice@acme.test").await;
    let bob = s.local_user("bob@acme.test").await;
    let admins = create_group(&s, "App Admins", &[&json!(alice.user.id)]).await;
    let other = create_group(&s, "Staff", &[&json!(bob.user.id)]).await;
    assert!(is_admin(&s.app, &alice).await && !is_admin(&s.app, &bob).await);

    let renamed_in = s
        .patch(
            &group_path(&other),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "APP ADMINS"}])),
        )
        .await;
    renamed_in.assert_error(StatusCode::CONFLICT, Some("uniqueness"));
    let renamed_away = s
        .patch(
            &group_path(&admins),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "Former Admins"}])),
        )
        .await;
    assert_eq!(renamed_away.status, StatusCode::OK);
    assert!(
        !is_admin(&s.app, &alice).await,
        "the IdP may remove the last admin"
    );
    let renamed_back = s
        .patch(
            &group_path(&admins),
            &patch_op(json!([{"op": "replace", "path": "displayName", "value": "App Admins"}])),
        )
        .await;
    assert_eq!(renamed_back.status, StatusCode::OK);
    assert!(is_admin(&s.app, &alice).await);

    assert_eq!(
        s.delete(&group_path(&admins)).await.status,
        StatusCode::NO_CONTENT
    );

    assert!(!is_admin(&s.app, &alice).await);
    assert!(!is_admin(&s.app, &bob).await);
}

#[tokio::test]
async fn a_deleted_user_leaves_their_groups_and_each_group_gets_a_new_version() {
    let s = scim().await;
    let a = s.create_user("a@acme.test").await;
    let b = s.create_user("b@acme.test").await;
    let group = create_group(&s, "Engineering", &[&a["id"], &b["id"]]).await;
    let path = group_path(&group);
    let before = s.get(&path).await;

    let deleted = s
        .delete(&format!("/Users/{}", a["id"].as_str().unwrap()))
        .await;
    let after = s.get(&path).await;
    let stale = send_as(
        &s.app,
        &s.token,
        Method::PATCH,
        &path,
        Some(&patch_op(
            json!([{"op": "replace", "value": {"displayName": "Eng"}}]),
        )),
        &[("if-match", before.header("etag"))],
    )
    .await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(member_ids(&after.body), [b["id"].as_str().unwrap()]);
    assert_ne!(
        after.header("etag"),
        before.header("etag"),
        "the members changed, so the version did"
    );
    assert_ne!(
        after.body["meta"]["version"],
        before.body["meta"]["version"]
    );
    stale.assert_error(StatusCode::PRECONDITION_FAILED, None);
}

#[tokio::test]
async fn a_user_gets_a_new_version_when_their_groups_change_as_the_user_resource_lists_them() {
    let s = scim().await;
    let a = s.create_user("a@acme.test").await;
    let b = s.create_user("b@acme.test").await;
    let user_path = |user: &Value| format!("/Users/{}", user["id"].as_str().unwrap());
    let version = async |user: &Value| s.get(&user_path(user)).await.header("etag").to_owned();
    let (a0, b0) = (version(&a).await, version(&b).await);

    let group = create_group(&s, "Engineering", &[&a["id"]]).await;
    let path = group_path(&group);
    let (a1, b1) = (version(&a).await, version(&b).await);
    let renamed = s
        .patch(
            &path,
            &patch_op(json!([{"op": "replace", "value": {"displayName": "Eng"}}])),
        )
        .await;
    let (a2, b2) = (version(&a).await, version(&b).await);
    let lists = s.get(&user_path(&a)).await;
    let deleted = s.delete(&path).await;
    let a3 = version(&a).await;

    assert_ne!(a1, a0, "joined");
    assert_eq!(b1, b0, "not a member");
    assert_eq!(renamed.status, StatusCode::OK);
    assert_ne!(a2, a1, "the group a lists was renamed");
    assert_eq!(b2, b1);
    assert_eq!(lists.body["groups"][0]["display"], "Eng");
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_ne!(a3, a2, "the group a listed is gone");
}
