//! The admin dashboard: who may see it, what it shows, its sign-out buttons, the live feed, the
//! audit log and the key and IdP settings, always inside the admin's own org.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use ual_todo::db::models::{OrgApiKey, User};

use crate::helpers::{
    EventStream, TestApp, TestUser, assert_is_redirect_to, count, email_subject, spawn_app,
};

const SOON: Duration = Duration::from_secs(5);

/// acme: an admin and alice; globex: its own admin and carol.
struct Orgs {
    app: TestApp,
    admin: TestUser,
    alice: TestUser,
    globex_admin: TestUser,
    carol: TestUser,
}

async fn orgs() -> Orgs {
    let app = spawn_app().await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    let admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let alice = app.create_user(acme.id, "alice@acme.test", false).await;
    let globex_admin = app.create_user(globex.id, "admin@globex.test", true).await;
    let carol = app.create_user(globex.id, "carol@globex.test", false).await;
    Orgs {
        app,
        admin,
        alice,
        globex_admin,
        carol,
    }
}

fn public_id_of(app: &TestApp, user: &TestUser) -> String {
    use diesel::prelude::*;
    use ual_todo::db::schema::sessions;
    sessions::table
        .filter(sessions::user_id.eq(user.user.id))
        .select(sessions::public_id)
        .first::<uuid::Uuid>(&mut app.db.connect())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn only_admins_of_the_org_see_the_dashboard() {
    let o = orgs().await;

    assert_is_redirect_to(&o.app.browser().get("/admin").await, "/login");
    let as_user = o.app.signed_in(&o.alice).await.get("/admin").await;
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
    assert!(as_user.text().await.unwrap().contains("administrators"));
    for path in ["/admin/audit", "/admin/keys"] {
        assert_eq!(
            o.app.signed_in(&o.alice).await.get(path).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    let events = EventStream::open(&o.app.signed_in(&o.alice).await, "/admin/events")
        .await
        .err()
        .unwrap();
    assert_eq!(events.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_dashboard_lists_the_orgs_users_and_live_sessions() {
    let o = orgs().await;
    let alice = o.app.signed_in(&o.alice).await;
    alice.get("/todos").await;
    o.app.signed_in(&o.carol).await;
    let admin = o.app.signed_in(&o.admin).await;

    let page = admin.page("/admin").await;

    assert!(page.contains("alice@acme.test"));
    assert!(
        page.contains(&o.alice.user.id.to_string()),
        "the user id (opaque subject) is shown"
    );
    assert!(
        page.contains(&public_id_of(&o.app, &o.alice)),
        "alice's session is listed"
    );
    assert!(page.contains("127.0.0.1"));
    assert!(
        !page.contains("carol@globex.test"),
        "another org's users never appear"
    );
    assert!(
        page.contains("/global-token-revocation"),
        "the UAL endpoint is shown"
    );
    assert!(
        page.contains(r#"<span id="session-count">2</span>"#),
        "alice and the admin"
    );
}

#[tokio::test]
async fn the_dashboard_pages_and_searches_users_of_the_org_only() {
    use diesel::connection::SimpleConnection as _;
    let o = orgs().await;
    // 120 more users of acme (SSO-only, so no password to hash): 122 in all, 50 per page.
    o.app
        .db
        .connect()
        .batch_execute(&format!(
            "INSERT INTO users (org_id, email, is_admin) \
             SELECT '{}', 'user' || lpad(i::text, 3, '0') || '@acme.test', false \
             FROM generate_series(1, 120) i",
            o.alice.user.org_id
        ))
        .unwrap();
    o.app.signed_in(&o.alice).await;
    let admin = o.app.signed_in(&o.admin).await;
    let rows = |page: &str| page.matches("<tr data-user-id=").count();

    let first = admin.page("/admin").await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains(r#"<span id="user-count">122</span> users"#));
    assert!(
        first.contains(r#"<span id="session-count">2</span>"#),
        "the org's sessions, whatever the page"
    );
    assert!(first.contains("Page 1 of 3") && first.contains(r#"href="/admin?page=2" rel="next""#));
    assert!(
        first.contains(&public_id_of(&o.app, &o.alice)),
        "alice is on page 1"
    );
    assert!(
        !first.contains("data-complete"),
        "a sign-in elsewhere must not reload it"
    );

    let last = admin.page("/admin?page=3").await;
    assert_eq!(rows(&last), 22);
    assert!(last.contains("user120@acme.test") && !last.contains("alice@acme.test"));
    assert!(last.contains(r#"href="/admin?page=2" rel="prev""#) && !last.contains(r#"rel="next""#));

    let found = admin.page("/admin?q=USER11").await;
    assert_eq!(rows(&found), 10, "user110 to user119, case-insensitive");
    assert!(found.contains(r#"<span id="user-count">10</span> users matching"#));
    for (search, what) in [
        ("%25", "a wildcard is literal"),
        ("carol", "another org's user"),
    ] {
        let page = admin.page(&format!("/admin?q={search}")).await;
        assert_eq!(rows(&page), 0, "{what}");
        assert!(page.contains("No user's email contains"));
    }
    for bad in ["/admin?page=0", "/admin?page=x", "/admin?q=a%00b"] {
        assert_eq!(
            admin.get(bad).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    let everyone = o.app.signed_in(&o.globex_admin).await.page("/admin").await;
    assert!(
        everyone.contains("data-complete"),
        "globex fits on one page"
    );
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session_of_the_user() {
    let o = orgs().await;
    let laptop = o.app.signed_in(&o.alice).await;
    let phone = o.app.signed_in(&o.alice).await;
    let admin = o.app.signed_in(&o.admin).await;

    let response = admin
        .post_form(&format!("/admin/users/{}/logout", o.alice.user.id), &[])
        .await;

    assert_is_redirect_to(&response, "/admin");
    assert!(
        admin
            .page("/admin")
            .await
            .contains("Signed alice@acme.test out everywhere: 2 sessions ended")
    );
    assert!(!laptop.is_signed_in().await && !phone.is_signed_in().await);
    assert!(admin.is_signed_in().await);
    assert_eq!(
        count(
            &o.app.db,
            "revocations WHERE source = 'admin' AND actor = 'admin admin@acme.test' AND sessions_ended = 2"
        ),
        1
    );
}

#[tokio::test]
async fn end_session_ends_only_that_session() {
    let o = orgs().await;
    let laptop = o.app.signed_in(&o.alice).await;
    let session = public_id_of(&o.app, &o.alice);
    let phone = o.app.signed_in(&o.alice).await;
    let admin = o.app.signed_in(&o.admin).await;

    let response = admin
        .post_form(&format!("/admin/sessions/{session}/logout"), &[])
        .await;

    assert_is_redirect_to(&response, "/admin");
    assert!(!laptop.is_signed_in().await);
    assert!(phone.is_signed_in().await);
    let again = admin
        .post_form(&format!("/admin/sessions/{session}/logout"), &[])
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "already ended");
}

#[tokio::test]
async fn an_admin_can_never_act_on_another_org() {
    let o = orgs().await;
    let carol = o.app.signed_in(&o.carol).await;
    let carol_session = public_id_of(&o.app, &o.carol);
    let admin = o.app.signed_in(&o.admin).await;

    let user = admin
        .post_form(&format!("/admin/users/{}/logout", o.carol.user.id), &[])
        .await;
    let session = admin
        .post_form(&format!("/admin/sessions/{carol_session}/logout"), &[])
        .await;
    let malformed = admin.post_form("/admin/users/not-an-id/logout", &[]).await;

    assert_eq!(user.status(), StatusCode::NOT_FOUND);
    assert_eq!(session.status(), StatusCode::NOT_FOUND);
    assert_eq!(malformed.status(), StatusCode::NOT_FOUND);
    assert!(carol.is_signed_in().await);
    assert_eq!(count(&o.app.db, "revocations"), 0);
    let globex_key = OrgApiKey::create(&mut *o.app.conn().await, o.carol.user.org_id)
        .await
        .unwrap()
        .0;
    let key = admin
        .post_form(&format!("/admin/keys/{}/revoke", globex_key.prefix), &[])
        .await;
    assert_eq!(key.status(), StatusCode::NOT_FOUND);
    assert_eq!(count(&o.app.db, "org_api_keys WHERE revoked_at IS NULL"), 1);
}

#[tokio::test]
async fn a_demoted_admin_loses_access_at_once() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);

    {
        use diesel::prelude::*;
        use ual_todo::db::schema::users;
        diesel::update(users::table.find(o.admin.user.id))
            .set(users::is_admin.eq(false))
            .execute(&mut o.app.db.connect())
            .unwrap();
    }

    assert_eq!(admin.get("/admin").await.status(), StatusCode::FORBIDDEN);
    let user = admin
        .post_form(&format!("/admin/users/{}/logout", o.alice.user.id), &[])
        .await;
    assert_eq!(user.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_admin_feed_shows_revocations_and_sign_ins_live() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;
    let globex_admin = o.app.signed_in(&o.globex_admin).await;
    let mut feed = EventStream::open(&admin, "/admin/events").await.unwrap();
    let mut other_feed = EventStream::open(&globex_admin, "/admin/events")
        .await
        .unwrap();
    for _ in 0..100 {
        if o.app.hub.stream_count() == 2 && o.app.hub.is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let alice = o.app.signed_in(&o.alice).await;
    let signin = feed.next(SOON).await.expect("a sign-in event");
    assert_eq!(signin.name, "signin");
    let data: Value = serde_json::from_str(&signin.data).unwrap();
    assert_eq!(data["user_id"], o.alice.user.id.to_string());
    assert_eq!(data["session_id"], public_id_of(&o.app, &o.alice));
    assert_eq!(data["ip"], "127.0.0.1");

    alice.post_form("/logout", &[]).await;
    let revoked = feed.next(SOON).await.expect("a revoked event");
    assert_eq!(revoked.name, "revoked");
    let data: Value = serde_json::from_str(&revoked.data).unwrap();
    assert_eq!(data["user_id"], o.alice.user.id.to_string());
    assert_eq!(data["source"], "self");
    assert_eq!(data["sessions_ended"], 1);

    assert_eq!(
        other_feed.next(Duration::from_millis(300)).await,
        None,
        "another org hears nothing"
    );
}

#[tokio::test]
async fn the_audit_log_pages_and_filters() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query(format!(
            "INSERT INTO revocations (org_id, user_id, source, actor, sessions_ended, tokens_revoked) \
             SELECT '{org}', '{alice}', CASE WHEN i % 2 = 0 THEN 'ual' ELSE 'admin' END, 'actor ' || i, 1, 0 \
             FROM generate_series(1, 60) AS i",
            org = o.alice.user.org_id,
            alice = o.alice.user.id
        ))
        .execute(&mut o.app.db.connect())
        .unwrap();
    }

    let first = admin.page("/admin/audit").await;
    assert_eq!(first.matches("<tr><td><time>").count(), 50);
    assert!(
        first.contains("actor 60") && !first.contains("actor 10<"),
        "newest first"
    );
    assert!(first.contains(r#"href="/admin/audit?page=2""#));
    let second = admin.page("/admin/audit?page=2").await;
    assert_eq!(second.matches("<tr><td><time>").count(), 10);
    assert!(second.contains("rel=\"prev\""));

    let ual_only = admin
        .page(&format!("/admin/audit?source=ual&user={}", o.alice.user.id))
        .await;
    assert_eq!(ual_only.matches("<tr><td><time>").count(), 30);
    assert!(!ual_only.contains("an administrator</td>"));
    let bob_only = admin
        .page(&format!("/admin/audit?user={}", o.admin.user.id))
        .await;
    assert!(bob_only.contains("No sign-outs or changes match."));

    assert_eq!(
        admin.get("/admin/audit?source=nope").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin.get("/admin/audit?user=nope").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin.get("/admin/audit?page=0").await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn keys_are_created_once_listed_and_revoked_from_the_keys_page() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;

    let created = admin.post_form("/admin/keys", &[]).await;
    assert_eq!(created.status(), StatusCode::OK);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let page = created.text().await.unwrap();
    let start = page.find("value=\"ual_").unwrap() + "value=\"".len();
    let key = page[start..start + 48].to_owned();

    let alice = email_subject("alice@acme.test");
    let ual = async |key: &str| o.app.universal_logout(key, &alice).await.status();
    assert_eq!(ual(&key).await, StatusCode::NO_CONTENT);
    let listed = admin.page("/admin/keys").await;
    assert!(listed.contains(&key[..12]) && !listed.contains(&key));

    let revoked = admin
        .post_form(&format!("/admin/keys/{}/revoke", &key[..12]), &[])
        .await;
    assert_is_redirect_to(&revoked, "/admin/keys");
    assert_eq!(ual(&key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_idp_settings_are_validated_and_saved() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;

    let bad = admin
        .post_form("/admin/idp", &[("issuer", "not a url"), ("client_id", "x")])
        .await;
    assert_is_redirect_to(&bad, "/admin/keys");
    assert!(
        admin
            .page("/admin/keys")
            .await
            .contains("must be an https:// URL")
    );
    let half = admin
        .post_form(
            "/admin/idp",
            &[("issuer", "https://acme.okta.com"), ("client_id", "")],
        )
        .await;
    assert_is_redirect_to(&half, "/admin/keys");
    assert!(admin.page("/admin/keys").await.contains("Give both"));

    admin
        .post_form(
            "/admin/idp",
            &[("issuer", "https://acme.okta.com/"), ("client_id", "0oa1")],
        )
        .await;
    let org = User::find(&mut *o.app.conn().await, o.admin.user.id)
        .await
        .unwrap()
        .unwrap()
        .org_id;
    assert_eq!(
        count(
            &o.app.db,
            &format!(
                "orgs WHERE id = '{org}' AND idp_issuer = 'https://acme.okta.com' AND idp_client_id = '0oa1'"
            )
        ),
        1
    );
    assert!(
        admin
            .page("/admin/keys")
            .await
            .contains("value=\"https://acme.okta.com\"")
    );

    admin
        .post_form("/admin/idp", &[("issuer", ""), ("client_id", "")])
        .await;
    assert_eq!(count(&o.app.db, "orgs WHERE idp_issuer IS NOT NULL"), 0);
}
