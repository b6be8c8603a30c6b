//! Account states on the dashboard: suspending and reactivating users, break-glass, the
//! "Suspended" filter, SCIM-managed users read-only, always inside the admin's own org.

use std::time::Duration;

use diesel::RunQueryDsl as _;
use reqwest::StatusCode;
use serde_json::Value;
use ual_todo::db::{ids::AccountState, models::User};

use crate::{
    admin_roles::wait_for,
    helpers::{Browser, EventStream, TestApp, TestUser, assert_is_redirect_to, count, spawn_app},
};

const SOON: Duration = Duration::from_secs(5);

/// acme: an admin and alice; globex: carol.
struct Orgs {
    app: TestApp,
    admin: TestUser,
    alice: TestUser,
    carol: TestUser,
}

async fn orgs() -> Orgs {
    let app = spawn_app().await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    Orgs {
        admin: app.create_user(acme.id, "admin@acme.test", true).await,
        alice: app.create_user(acme.id, "alice@acme.test", false).await,
        carol: app.create_user(globex.id, "carol@globex.test", false).await,
        app,
    }
}

async fn post(
    by: &Browser,
    user: &TestUser,
    what: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    by.post_form(&format!("/admin/users/{}/{what}", user.user.id), form)
        .await
}

/// The user as the database has it now (`None` once deleted).
async fn reload(app: &TestApp, user: &TestUser) -> User {
    User::find(&mut *app.conn().await, user.user.id)
        .await
        .unwrap()
        .expect("the user exists")
}

/// The dashboard's row of `email`, from its `<tr` to its `</tr>`.
fn row_of<'a>(page: &'a str, email: &str) -> &'a str {
    let start = page
        .find(&format!("data-email=\"{email}\""))
        .unwrap_or_else(|| panic!("{email} is listed"));
    let end = start + page[start..].find("</tr>").unwrap();
    &page[start..end]
}

/// A user that the org's IdP provisioned over SCIM, inserted as SCIM provisioning would.
async fn scim_user(app: &TestApp, org: ual_todo::db::ids::OrgId, email: &str) -> TestUser {
    diesel::sql_query(format!(
        "INSERT INTO users (org_id, email, managed_by, external_id) VALUES ('{org}', '{email}', 'scim', 'ext-1')"
    ))
    .execute(&mut app.db.connect())
    .unwrap();
    let user = User::find_by_email(&mut *app.conn().await, org, email)
        .await
        .unwrap()
        .unwrap();
    TestUser {
        user,
        password: String::new(),
    }
}

#[tokio::test]
async fn suspending_a_user_from_the_dashboard_ends_their_sessions_and_shows_them_suspended() {
    let o = orgs().await;
    let laptop = o.app.signed_in(&o.alice).await;
    let phone = o.app.signed_in(&o.alice).await;
    let admin = o.app.signed_in(&o.admin).await;
    let watcher = o.app.signed_in(&o.admin).await;
    let mut feed = EventStream::open(&watcher, "/admin/events").await.unwrap();
    wait_for(&o.app.hub, 1).await;

    let response = post(&admin, &o.alice, "suspend", &[]).await;

    assert_is_redirect_to(&response, "/admin");
    assert!(!laptop.is_signed_in().await && !phone.is_signed_in().await);
    let alice = reload(&o.app, &o.alice).await;
    assert_eq!(alice.state, AccountState::Suspended);
    assert_eq!(
        alice.state_changed_by.as_deref(),
        Some("an administrator (admin admin@acme.test)")
    );
    let page = admin.page("/admin").await;
    assert!(page.contains(
        "Suspended alice@acme.test: 2 sessions ended, 0 tokens revoked. They cannot sign in until reactivated."
    ));
    let row = row_of(&page, "alice@acme.test");
    assert!(
        row.contains(r#"<span class="badge state-badge" data-state="suspended">Suspended</span>"#)
    );
    assert!(row.contains("Suspended by an administrator (admin admin@acme.test) · 20"));
    assert!(
        row.contains("/reactivate\" class=\"reactivate\">"),
        "Reactivate is offered"
    );
    assert!(row.contains("class=\"suspend\" hidden>"), "Suspend is not");
    assert_eq!(
        count(
            &o.app.db,
            "revocations WHERE action = 'suspend' AND source = 'admin' AND sessions_ended = 2 \
             AND detail = '{\"before\": {\"state\": \"active\"}, \"after\": {\"state\": \"suspended\"}}'"
        ),
        1
    );
    let event = feed
        .next(SOON)
        .await
        .expect("the watching dashboard hears it");
    assert_eq!(event.name, "revoked");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["action"], "suspend");
    assert_eq!(data["phrase"], "suspended");
    assert_eq!(data["ends_sessions"], true);
    assert_eq!(
        (data["state"].as_str(), data["state_label"].as_str()),
        (Some("suspended"), Some("Suspended"))
    );
    let changed = data["state_changed"].as_str().unwrap();
    assert!(
        changed.starts_with("Suspended by an administrator (admin admin@acme.test) · 20"),
        "the row's words, as the page has them: {changed}"
    );
    assert_eq!(data["user_id"], o.alice.user.id.to_string());
    assert_eq!(data["sessions_ended"], 2);

    let again = post(&admin, &o.alice, "suspend", &[]).await;
    assert_is_redirect_to(&again, "/admin");
    assert!(
        admin
            .page("/admin")
            .await
            .contains("alice@acme.test was already suspended.")
    );
    assert_eq!(
        count(&o.app.db, "revocations WHERE action = 'suspend'"),
        1,
        "once"
    );
}

#[tokio::test]
async fn reactivating_a_suspended_user_lets_them_be_active_again_and_brings_no_session_back() {
    let o = orgs().await;
    let laptop = o.app.signed_in(&o.alice).await;
    let admin = o.app.signed_in(&o.admin).await;
    assert_is_redirect_to(&post(&admin, &o.alice, "suspend", &[]).await, "/admin");
    let mut feed = EventStream::open(&admin, "/admin/events").await.unwrap();
    wait_for(&o.app.hub, 1).await;

    let response = post(&admin, &o.alice, "reactivate", &[]).await;

    assert_is_redirect_to(&response, "/admin");
    assert_eq!(reload(&o.app, &o.alice).await.state, AccountState::Active);
    assert!(
        !laptop.is_signed_in().await,
        "the ended session stays ended"
    );
    let page = admin.page("/admin").await;
    assert!(page.contains("Reactivated alice@acme.test: they can sign in again."));
    let row = row_of(&page, "alice@acme.test");
    assert!(row.contains(r#"data-state="active">Active</span>"#));
    assert!(row.contains("Reactivated by an administrator (admin admin@acme.test) · "));
    assert!(
        row.contains("/suspend\" class=\"suspend\">"),
        "Suspend is offered again"
    );
    assert_eq!(
        count(
            &o.app.db,
            "revocations WHERE action = 'reactivate' AND sessions_ended = 0"
        ),
        1
    );
    let event = feed.next(SOON).await.expect("dashboards hear it");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        (data["action"].as_str(), data["ends_sessions"].as_bool()),
        (Some("reactivate"), Some(false))
    );
    let _alice = o.app.signed_in(&o.alice).await;
}

#[tokio::test]
async fn an_admin_cannot_suspend_themselves() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;
    let page = admin.page("/admin").await;
    assert!(
        !row_of(&page, "admin@acme.test").contains("/suspend"),
        "no Suspend button on the admin's own row"
    );

    let response = post(&admin, &o.admin, "suspend", &[]).await;

    assert_is_redirect_to(&response, "/admin");
    assert!(
        admin
            .page("/admin")
            .await
            .contains("You cannot suspend yourself: another administrator can.")
    );
    assert_eq!(reload(&o.app, &o.admin).await.state, AccountState::Active);
    assert!(admin.is_signed_in().await);
    assert_eq!(count(&o.app.db, "revocations"), 0);
}

#[tokio::test]
async fn users_managed_by_scim_are_read_only_but_can_be_signed_out_and_given_break_glass() {
    let o = orgs().await;
    let bob = scim_user(&o.app, o.alice.user.org_id, "bob@acme.test").await;
    let admin = o.app.signed_in(&o.admin).await;

    let page = admin.page("/admin").await;
    let row = row_of(&page, "bob@acme.test");
    assert!(row.contains("Managed by your IdP (SCIM)"));
    assert!(row.contains("Change this user at your identity provider."));
    for read_only in ["/suspend", "/reactivate", "/role"] {
        assert!(!row.contains(read_only), "no {read_only} button for bob");
    }
    assert!(row.contains("/logout") && row.contains("/break-glass"));
    assert!(row_of(&page, "alice@acme.test").contains("Managed here"));

    for (what, form) in [
        ("suspend", &[][..]),
        ("reactivate", &[][..]),
        ("role", &[("admin", "true")][..]),
    ] {
        let response = post(&admin, &bob, what, form).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{what}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains("bob@acme.test is managed by your identity provider (SCIM)"),
            "{what}: {text}"
        );
    }
    let unchanged = reload(&o.app, &bob).await;
    assert_eq!(
        (unchanged.state, unchanged.is_admin),
        (AccountState::Active, false)
    );
    assert_eq!(count(&o.app.db, "revocations"), 0, "nothing was written");

    assert_is_redirect_to(&post(&admin, &bob, "logout", &[]).await, "/admin");
    let glass = post(&admin, &bob, "break-glass", &[("break_glass", "true")]).await;
    assert_is_redirect_to(&glass, "/admin");
    assert!(reload(&o.app, &bob).await.break_glass);
    assert_eq!(
        count(&o.app.db, "revocations WHERE action = 'break_glass'"),
        1
    );
}

#[tokio::test]
async fn break_glass_is_turned_on_and_off_from_the_dashboard_and_audited() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;

    let on = post(&admin, &o.alice, "break-glass", &[("break_glass", "true")]).await;
    assert_is_redirect_to(&on, "/admin");
    assert!(reload(&o.app, &o.alice).await.break_glass);
    let page = admin.page("/admin").await;
    assert!(page.contains("alice@acme.test has break-glass"));
    let row = row_of(&page, "alice@acme.test");
    assert!(row.contains(r#"<span class="badge break-glass""#));
    assert!(row.contains("Turn break-glass off"));

    let off = post(&admin, &o.alice, "break-glass", &[("break_glass", "false")]).await;
    assert_is_redirect_to(&off, "/admin");
    assert!(!reload(&o.app, &o.alice).await.break_glass);
    for bad in [&[("break_glass", "yes")][..], &[][..]] {
        let response = post(&admin, &o.alice, "break-glass", bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
    assert_eq!(
        count(&o.app.db, "revocations WHERE action = 'break_glass'"),
        2
    );

    let audit = admin.page("/admin/audit").await;
    assert!(audit.contains(
        "Break-glass on<br><span class=\"small muted change\">break_glass: false → true</span>"
    ));
    assert!(audit.contains(
        "Break-glass off<br><span class=\"small muted change\">break_glass: true → false</span>"
    ));
}

#[tokio::test]
async fn the_dashboard_shows_only_suspended_users_when_asked_and_never_deleted_ones() {
    let o = orgs().await;
    let org = o.alice.user.org_id;
    let bob = o.app.create_user(org, "bob@acme.test", false).await;
    let gone = o.app.create_user(org, "gone@acme.test", false).await;
    diesel::sql_query(format!(
        "INSERT INTO users (org_id, email, state, state_changed_at, state_changed_by) \
         SELECT '{org}', 'zz' || lpad(i::text, 3, '0') || '@acme.test', 'suspended', now(), 'an operator (command line)' \
         FROM generate_series(1, 55) AS i"
    ))
    .execute(&mut o.app.db.connect())
    .unwrap();
    diesel::sql_query(format!(
        "UPDATE users SET state = 'deleted', deleted_at = now() WHERE id = '{}'",
        gone.user.id
    ))
    .execute(&mut o.app.db.connect())
    .unwrap();
    let admin = o.app.signed_in(&o.admin).await;
    assert_is_redirect_to(&post(&admin, &bob, "suspend", &[]).await, "/admin");

    let first = admin.page("/admin?state=suspended").await;
    assert!(
        first.contains(r#"<span id="user-count">56</span> suspended users"#),
        "bob and 55 more"
    );
    assert!(first.contains("data-email=\"bob@acme.test\""));
    assert!(
        !first.contains("data-email=\"alice@acme.test\"")
            && !first.contains("data-email=\"admin@acme.test\"")
    );
    assert_eq!(
        first
            .matches("data-state=\"suspended\">Suspended</span>")
            .count(),
        50
    );
    assert!(
        first.contains(r#"href="/admin?state=suspended&#38;page=2""#),
        "the next page keeps the filter"
    );
    assert!(
        !first.contains("data-complete"),
        "a filtered list is not everyone"
    );
    assert!(first.contains(r#"<option value="suspended" selected>"#));
    let second = admin.page("/admin?state=suspended&page=2").await;
    assert_eq!(
        second
            .matches("data-state=\"suspended\">Suspended</span>")
            .count(),
        6
    );

    let searched = admin.page("/admin?state=suspended&q=bob").await;
    assert!(searched.contains(r#"<span id="user-count">1</span> suspended user matching"#));
    let none = admin.page("/admin?state=suspended&q=alice").await;
    assert!(none.contains("No suspended user's email contains “alice”."));
    let active = admin.page("/admin?state=active").await;
    assert!(
        active.contains(r#"<span id="user-count">2</span> active users"#),
        "alice and the admin"
    );

    for page in ["/admin", "/admin?state=suspended", "/admin?q=gone"] {
        assert!(
            !admin.page(page).await.contains("gone@acme.test"),
            "{page} hides the deleted"
        );
    }
    for bad in ["deleted", "nope"] {
        let response = admin.get(&format!("/admin?state={bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn an_admin_cannot_change_a_user_of_another_org() {
    let o = orgs().await;
    let carol = o.app.signed_in(&o.carol).await;
    let admin = o.app.signed_in(&o.admin).await;

    for (what, form) in [
        ("suspend", &[][..]),
        ("reactivate", &[][..]),
        ("break-glass", &[("break_glass", "true")][..]),
        ("role", &[("admin", "true")][..]),
    ] {
        let response = post(&admin, &o.carol, what, form).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{what}");
        let malformed = admin
            .post_form(&format!("/admin/users/nope/{what}"), form)
            .await;
        assert_eq!(malformed.status(), StatusCode::NOT_FOUND, "{what} of no id");
    }
    let untouched = reload(&o.app, &o.carol).await;
    assert_eq!(untouched.state, AccountState::Active);
    assert!(!untouched.break_glass && !untouched.is_admin);
    assert!(carol.is_signed_in().await);
    assert_eq!(count(&o.app.db, "revocations"), 0);
}

#[tokio::test]
async fn state_changes_posted_from_another_site_are_refused() {
    let o = orgs().await;
    let alice = o.app.signed_in(&o.alice).await;
    let admin = o.app.signed_in(&o.admin).await;

    for what in ["suspend", "break-glass"] {
        let response = admin
            .client
            .post(
                o.app
                    .url(&format!("/admin/users/{}/{what}", o.alice.user.id)),
            )
            .header("Sec-Fetch-Site", "cross-site")
            .form(&[("break_glass", "true")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
    }
    let untouched = reload(&o.app, &o.alice).await;
    assert_eq!(untouched.state, AccountState::Active);
    assert!(!untouched.break_glass);
    assert!(alice.is_signed_in().await);
    assert_eq!(count(&o.app.db, "revocations"), 0);
}

#[tokio::test]
async fn the_audit_log_shows_each_change_with_before_and_after_and_filters_scim() {
    let o = orgs().await;
    let admin = o.app.signed_in(&o.admin).await;
    assert_is_redirect_to(&post(&admin, &o.alice, "suspend", &[]).await, "/admin");
    assert_is_redirect_to(&post(&admin, &o.alice, "reactivate", &[]).await, "/admin");
    assert_is_redirect_to(
        &post(&admin, &o.alice, "role", &[("admin", "true")]).await,
        "/admin",
    );

    let audit = admin.page("/admin/audit").await;
    for shown in [
        r#"<td class="action">Suspended<br><span class="small muted change">state: active → suspended</span>"#,
        r#"<td class="action">Reactivated<br><span class="small muted change">state: suspended → active</span>"#,
        r#"<td class="action">Made admin<br><span class="small muted change">admin: false → true</span>"#,
    ] {
        assert!(audit.contains(shown), "{shown}");
    }
    let dashboard = admin.page("/admin").await;
    assert!(dashboard.contains("<strong>alice@acme.test</strong> reactivated by an administrator"));
    assert!(dashboard.contains("<strong>alice@acme.test</strong> suspended by an administrator"));

    let scim = admin.page("/admin/audit?source=scim").await;
    assert!(scim.contains(r#"<option value="scim" selected>SCIM provisioning</option>"#));
    assert!(scim.contains("No sign-outs or changes match."));
}

/// The longest email an admin may have still fits in `state_changed_by` (256 characters).
#[tokio::test]
async fn an_admin_with_the_longest_email_can_suspend_a_user() {
    let o = orgs().await;
    let email = format!("{}@acme.test", "a".repeat(240));
    let long = o.app.create_user(o.alice.user.org_id, &email, true).await;
    let admin = o.app.signed_in(&long).await;

    let response = post(&admin, &o.alice, "suspend", &[]).await;

    assert_is_redirect_to(&response, "/admin");
    assert_eq!(
        reload(&o.app, &o.alice).await.state,
        AccountState::Suspended
    );
}

#[tokio::test]
async fn an_admin_asks_a_user_to_sign_in_again_and_their_session_waits_for_it() {
    let o = orgs().await;
    let dashboard = o.app.signed_in(&o.admin).await;
    let alices = o.app.signed_in(&o.alice).await;
    assert!(
        row_of(&dashboard.page("/admin").await, "alice@acme.test").contains("Ask to sign in again")
    );

    let asked = post(&dashboard, &o.alice, "reauth", &[]).await;

    assert_is_redirect_to(&asked, "/admin");
    assert_is_redirect_to(&alices.get("/todos").await, "/reauth?return=%2Ftodos");
    assert_eq!(
        count(&o.app.db, "sessions WHERE reauth_requested_at IS NOT NULL"),
        1
    );
    let audit = format!(
        "revocations WHERE user_id = '{}' AND source = 'reauth' AND actor = 'admin admin@acme.test'",
        o.alice.user.id
    );
    assert_eq!(count(&o.app.db, &audit), 1);
    assert!(
        dashboard.is_signed_in().await,
        "the admin's own session is untouched"
    );
    let others = post(&dashboard, &o.carol, "reauth", &[]).await;
    assert_eq!(
        others.status(),
        StatusCode::NOT_FOUND,
        "never another org's user"
    );
}
