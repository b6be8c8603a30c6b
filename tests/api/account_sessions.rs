//! `/account/sessions`: a user sees and ends their own sessions, and only theirs (issue 14).

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use ual_todo::db::models::{AccessToken, known_device};

use crate::helpers::{
    Browser, EventStream, SseEvent, TestApp, TestUser, assert_is_redirect_to, count, spawn_app_with,
};

const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
const FIREFOX_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// An app that takes client addresses from `X-Forwarded-For` (as behind its proxy).
async fn app() -> TestApp {
    spawn_app_with(|s| s.trust_proxy_headers = true).await
}

/// A browser with this user agent, reported by the proxy as `ip`.
fn device(app: &TestApp, user_agent: &str, ip: &str) -> Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    let client = reqwest::Client::builder()
        .user_agent(user_agent)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Browser {
        client,
        jar,
        base: app.address.clone(),
    }
}

/// `user` signed in on a device.
async fn signed_in_on(app: &TestApp, user: &TestUser, user_agent: &str, ip: &str) -> Browser {
    let browser = device(app, user_agent, ip);
    let response = browser.login(&user.user.email, &user.password).await;
    assert_is_redirect_to(&response, "/todos");
    browser
}

/// The public ids of `email`'s sessions, oldest first.
fn session_ids(app: &TestApp, email: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    use diesel::RunQueryDsl as _;
    diesel::sql_query(format!(
        "SELECT s.public_id::text AS id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.email = '{email}' ORDER BY s.created_at, s.public_id"
    ))
    .load::<Id>(&mut app.db.connect())
    .unwrap()
    .into_iter()
    .map(|i| i.id)
    .collect()
}

/// The next event named `name` on `stream` within five seconds.
async fn next_named(stream: &mut EventStream, name: &str) -> SseEvent {
    loop {
        let event = stream
            .next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {name} event"));
        if event.name == name {
            return event;
        }
    }
}

#[tokio::test]
async fn the_page_lists_every_session_of_the_user_and_marks_this_device() {
    let app = app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let _phone = signed_in_on(&app, &alice, SAFARI_IPHONE, "198.51.100.20").await;
    let _bob = signed_in_on(&app, &bob, FIREFOX_WINDOWS, "192.0.2.9").await;
    AccessToken::create(&mut *app.conn().await, alice.user.id, "backup script")
        .await
        .unwrap();

    let page = laptop.get("/account/sessions").await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self'"),
        "password forms stay here"
    );
    let page = page.text().await.unwrap();

    assert!(page.contains("Chrome on Linux") && page.contains("203.0.113.5"));
    assert!(page.contains("Safari on iOS") && page.contains("198.51.100.20"));
    assert_eq!(page.matches("This device").count(), 1);
    assert_eq!(page.matches(">Password<").count(), 2, "how each signed in");
    assert!(
        !page.contains("Firefox on Windows") && !page.contains("192.0.2.9"),
        "not another user's"
    );
    assert!(page.contains("backup script"), "the user's API tokens");
    assert!(page.contains(r#"href="/account/sessions">Sessions</a>"#));
}

#[tokio::test]
async fn a_user_ends_another_of_their_sessions_and_it_is_audited() {
    let app = app().await;
    let alice = app.alice().await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let phone = signed_in_on(&app, &alice, SAFARI_IPHONE, "198.51.100.20").await;
    let phone_id = session_ids(&app, "alice@acme.test")[1].clone();

    let ended = laptop
        .post_form(&format!("/account/sessions/{phone_id}/end"), &[])
        .await;

    assert_is_redirect_to(&ended, "/account/sessions");
    phone.assert_signed_out().await;
    assert!(laptop.is_signed_in().await);
    assert_eq!(
        count(
            &app.db,
            "revocations WHERE source = 'self' AND sessions_ended = 1 AND tokens_revoked = 0"
        ),
        1
    );
}

#[tokio::test]
async fn the_current_session_cannot_be_ended_from_the_list() {
    let app = app().await;
    let alice = app.alice().await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let own = session_ids(&app, "alice@acme.test")[0].clone();

    let refused = laptop
        .post_form(&format!("/account/sessions/{own}/end"), &[])
        .await;

    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(laptop.is_signed_in().await, "kept: Sign out ends it");
    assert_eq!(count(&app.db, "revocations"), 0);
}

#[tokio::test]
async fn a_user_cannot_end_another_users_session() {
    let app = app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let globex = app.create_org("globex").await;
    let carol = app.create_user(globex.id, "carol@globex.test", true).await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let bobs = signed_in_on(&app, &bob, FIREFOX_WINDOWS, "192.0.2.9").await;
    let carols = signed_in_on(&app, &carol, SAFARI_IPHONE, "198.51.100.20").await;
    let bob_id = session_ids(&app, "bob@acme.test")[0].clone();
    let carol_id = session_ids(&app, "carol@globex.test")[0].clone();

    for id in [bob_id.as_str(), carol_id.as_str(), "not-a-uuid"] {
        let refused = laptop
            .post_form(&format!("/account/sessions/{id}/end"), &[])
            .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{id}");
    }

    assert!(bobs.is_signed_in().await && carols.is_signed_in().await);
    let listed = carols.page("/account/sessions").await;
    assert!(
        !listed.contains("Chrome on Linux"),
        "nor listed across orgs"
    );
    assert_eq!(count(&app.db, "revocations"), 0);
}

#[tokio::test]
async fn ending_other_sessions_needs_the_right_password() {
    let app = app().await;
    let alice = app.alice().await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let phone = signed_in_on(&app, &alice, SAFARI_IPHONE, "198.51.100.20").await;
    let tablet = signed_in_on(&app, &alice, FIREFOX_WINDOWS, "192.0.2.9").await;
    let (_, token) = AccessToken::create(&mut *app.conn().await, alice.user.id, "script")
        .await
        .unwrap();

    for wrong in [vec![("password", "not it")], vec![("password", "")], vec![]] {
        let refused = laptop
            .post_form("/account/sessions/end-others", &wrong)
            .await;
        assert!(
            matches!(
                refused.status(),
                StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
            ),
            "{wrong:?}: {}",
            refused.status()
        );
        assert!(refused.text().await.unwrap().contains("password"));
    }
    assert!(phone.is_signed_in().await && tablet.is_signed_in().await);

    let ended = laptop
        .post_form(
            "/account/sessions/end-others",
            &[("password", &alice.password)],
        )
        .await;

    assert_is_redirect_to(&ended, "/account/sessions");
    phone.assert_signed_out().await;
    tablet.assert_signed_out().await;
    assert!(laptop.is_signed_in().await, "this one stays");
    let api = reqwest::Client::new()
        .get(app.url("/api/todos"))
        .bearer_auth(ual_todo::secret_token::reveal(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        StatusCode::OK,
        "API tokens have their own buttons"
    );
    assert_eq!(
        count(
            &app.db,
            "revocations WHERE source = 'self' AND sessions_ended = 2"
        ),
        1
    );
}

#[tokio::test]
async fn the_ended_tabs_are_told_they_were_signed_out_from_another_device() {
    let app = app().await;
    let alice = app.alice().await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let phone = signed_in_on(&app, &alice, SAFARI_IPHONE, "198.51.100.20").await;
    let tablet = signed_in_on(&app, &alice, FIREFOX_WINDOWS, "192.0.2.9").await;
    let ids = session_ids(&app, "alice@acme.test");
    let mut on_laptop = EventStream::open(&laptop, "/events").await.ok().unwrap();
    let mut on_phone = EventStream::open(&phone, "/events").await.ok().unwrap();
    let mut on_tablet = EventStream::open(&tablet, "/events").await.ok().unwrap();

    laptop
        .post_form(&format!("/account/sessions/{}/end", ids[1]), &[])
        .await;

    let told = next_named(&mut on_phone, "logout").await;
    let told: Value = serde_json::from_str(&told.data).unwrap();
    assert_eq!(told["reason"], "self_device");
    assert_eq!(
        told["message"],
        "You signed out this device from another one."
    );
    let listed = next_named(&mut on_laptop, "sessions").await;
    assert!(
        listed.data.contains(r#""kind":"ended""#),
        "the list updates"
    );

    laptop
        .post_form(
            "/account/sessions/end-others",
            &[("password", &alice.password)],
        )
        .await;
    let told = next_named(&mut on_tablet, "logout").await;
    assert!(told.data.contains("self_device"));
    let next = on_laptop.next(Duration::from_millis(500)).await;
    assert!(
        next.as_ref().is_none_or(|e| e.name != "logout"),
        "the session that asked goes on: {next:?}"
    );
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_flagged_and_other_tabs_are_told() {
    let app = app().await;
    let alice = app.alice().await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let mut on_laptop = EventStream::open(&laptop, "/events").await.ok().unwrap();

    // The same browser in the same /24: a device seen before.
    let _again = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.77").await;
    let known = next_named(&mut on_laptop, "sessions").await;
    let known: Value = serde_json::from_str(&known.data).unwrap();
    assert_eq!(known["kind"], "signin");
    assert_eq!(known["new_device"], false);

    let _stranger = signed_in_on(&app, &alice, FIREFOX_WINDOWS, "192.0.2.9").await;
    let new = next_named(&mut on_laptop, "sessions").await;
    let new: Value = serde_json::from_str(&new.data).unwrap();
    assert_eq!(new["new_device"], true);
    assert_eq!(new["message"], "New sign-in from Firefox on Windows");
    assert_eq!(new["page"], "/account/sessions");

    let page = laptop.page("/account/sessions").await;
    assert_eq!(page.matches("New device").count(), 1, "only the stranger");
    assert_eq!(
        count(&app.db, "sessions WHERE new_device"),
        1,
        "nor is a first sign-in new"
    );
}

#[tokio::test]
async fn the_devices_kept_per_user_are_capped() {
    let app = app().await;
    let alice = app.alice().await;
    let mut conn = app.conn().await;

    for i in 0..(known_device::MAX_PER_USER + 15) {
        let ip = format!("10.0.{i}.1");
        known_device::seen(&mut conn, alice.user.id, Some(CHROME_LINUX), Some(&ip))
            .await
            .unwrap();
    }

    assert_eq!(
        count(&app.db, "known_devices"),
        known_device::MAX_PER_USER,
        "the oldest are forgotten"
    );
    let newest = known_device::seen(
        &mut conn,
        alice.user.id,
        Some(CHROME_LINUX),
        Some(&format!("10.0.{}.9", known_device::MAX_PER_USER + 14)),
    )
    .await
    .unwrap();
    assert!(!newest, "the most recent are remembered");
}

#[tokio::test]
async fn a_user_revokes_their_own_token_from_the_page_and_no_one_elses() {
    let app = app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let (own, _) = AccessToken::create(&mut *app.conn().await, alice.user.id, "mine")
        .await
        .unwrap();
    let (bobs, _) = AccessToken::create(&mut *app.conn().await, bob.user.id, "bob's")
        .await
        .unwrap();

    let refused = laptop
        .post_form(&format!("/account/tokens/{}/revoke", bobs.id), &[])
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let revoked = laptop
        .post_form(&format!("/account/tokens/{}/revoke", own.id), &[])
        .await;

    assert_is_redirect_to(&revoked, "/account/sessions");
    assert_eq!(
        count(&app.db, "access_tokens WHERE revoked_at IS NOT NULL"),
        1
    );
    assert_eq!(
        count(
            &app.db,
            &format!(
                "access_tokens WHERE revoked_at IS NULL AND id = '{}'",
                bobs.id
            )
        ),
        1
    );
    assert!(!laptop.page("/account/sessions").await.contains(">mine<"));
}

#[tokio::test]
async fn the_page_and_its_forms_are_for_signed_in_users_only() {
    let app = app().await;
    let alice = app.alice().await;
    let _laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let id = session_ids(&app, "alice@acme.test")[0].clone();
    let stranger = app.browser();

    assert_is_redirect_to(&stranger.get("/account/sessions").await, "/login");
    for path in [
        format!("/account/sessions/{id}/end"),
        "/account/sessions/end-others".to_owned(),
    ] {
        let refused = stranger.post_form(&path, &[("password", "x")]).await;
        assert_is_redirect_to(&refused, "/login");
    }
    assert_eq!(count(&app.db, "revocations"), 0);
}

#[tokio::test]
async fn another_site_cannot_make_a_signed_in_browser_end_its_sessions() {
    let app = app().await;
    let alice = app.alice().await;
    let laptop = signed_in_on(&app, &alice, CHROME_LINUX, "203.0.113.5").await;
    let phone = signed_in_on(&app, &alice, SAFARI_IPHONE, "198.51.100.20").await;
    let phone_id = session_ids(&app, "alice@acme.test")[1].clone();

    for path in [
        format!("/account/sessions/{phone_id}/end"),
        "/account/sessions/end-others".to_owned(),
    ] {
        let forged = laptop
            .client
            .post(app.url(&path))
            .header("Origin", "https://evil.example")
            .header("Sec-Fetch-Site", "cross-site")
            .form(&[("password", alice.password.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(phone.is_signed_in().await);
}
