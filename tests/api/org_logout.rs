//! "Sign out everyone in the org": from the dashboard (the admin's own session spared), from the
//! command line (nothing spared), and in batches at 10,000 users.

use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use reqwest::StatusCode;
use ual_todo::{
    db::{ids::SessionId, models::RevocationSource},
    revocation::{Requester, org::sign_out_org},
};

use crate::helpers::{
    Browser, EventStream, TestApp, assert_is_redirect_to, count, run_cli, spawn_app,
};

/// Waits until `stream` says `logout`.
async fn hears_logout(stream: &mut EventStream) -> bool {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        match stream.next(Duration::from_secs(10)).await {
            Some(event) if event.name == "logout" => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

/// Waits until the org's latest run has finished; its progress as the dashboard reads it.
async fn finished_run(admin: &Browser) -> serde_json::Value {
    for _ in 0..200 {
        let response = admin.get("/admin/org-logout").await;
        assert_eq!(response.status(), StatusCode::OK);
        let run: serde_json::Value = response.json().await.unwrap();
        if run["running"] == false {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sign-out of everyone did not finish within 10 s");
}

/// A personal access token for the user `email`, made in SQL.
fn give_token(app: &TestApp, email: &str) {
    app.db
        .connect()
        .batch_execute(&format!(
            "INSERT INTO access_tokens (user_id, name, prefix, token_hash)
             SELECT id, 'laptop', 'pat_' || left(md5(id::text), 8), sha256(convert_to(email, 'UTF8'))
             FROM users WHERE email = '{email}'"
        ))
        .unwrap();
}

#[tokio::test]
async fn an_admin_signs_out_everyone_in_the_org_but_keeps_their_own_session() {
    // Arrange
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let alice = app.create_user(org.id, "alice@acme.test", false).await;
    let bob = app.create_user(org.id, "bob@acme.test", false).await;
    let globex = app.create_org("globex").await;
    let carol = app.create_user(globex.id, "carol@globex.test", false).await;
    give_token(&app, "alice@acme.test");
    let admin_here = app.signed_in(&admin).await;
    let admin_elsewhere = app.signed_in(&admin).await;
    let (alice_tab, bob_tab) = (app.signed_in(&alice).await, app.signed_in(&bob).await);
    let carol_tab = app.signed_in(&carol).await;
    let mut alice_events = EventStream::open(&alice_tab, "/events").await.unwrap();
    let mut bob_events = EventStream::open(&bob_tab, "/events").await.unwrap();
    let mut elsewhere_events = EventStream::open(&admin_elsewhere, "/events")
        .await
        .unwrap();
    let mut dashboard = EventStream::open(&admin_here, "/admin/events")
        .await
        .unwrap();

    // Act
    let response = admin_here
        .post_form("/admin/org-logout", &[("slug", " acme ")])
        .await;

    // Assert
    assert_is_redirect_to(&response, "/admin");
    assert!(hears_logout(&mut alice_events).await, "alice's tab is told");
    assert!(hears_logout(&mut bob_events).await, "bob's tab is told");
    assert!(
        hears_logout(&mut elsewhere_events).await,
        "the admin's other tab is told"
    );
    let run = finished_run(&admin_here).await;
    assert_eq!(run["users_done"], 3);
    assert_eq!(
        run["summary"],
        "3 of 3 users · 3 sessions ended · 1 token revoked"
    );
    for signed_out in [&alice_tab, &bob_tab, &admin_elsewhere] {
        signed_out.assert_signed_out().await;
    }
    assert!(
        admin_here.is_signed_in().await,
        "the admin's own session is kept"
    );
    assert!(carol_tab.is_signed_in().await, "another org is untouched");
    assert_eq!(count(&app.db, "access_tokens WHERE revoked_at IS NULL"), 0);
    assert_eq!(
        count(
            &app.db,
            &format!(
                "revocations WHERE org_id = '{}' AND source = 'admin' AND actor = 'admin admin@acme.test'",
                org.id
            )
        ),
        3,
        "one audit row per user"
    );
    let page = admin_here.page("/admin").await;
    assert!(
        page.contains("3 of 3 users · 3 sessions ended · 1 token revoked"),
        "{page}"
    );
    assert!(page.contains("Everyone was signed out by admin admin@acme.test"));
    // The dashboard itself stays open: its stream carries the org's events, not a logout.
    let mut names = Vec::new();
    while let Some(event) = dashboard.next(Duration::from_millis(300)).await {
        names.push(event.name);
    }
    assert!(!names.iter().any(|n| n == "logout"), "{names:?}");
}

#[tokio::test]
async fn a_wrong_slug_signs_out_nobody() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    app.create_org("globex").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let alice = app.create_user(org.id, "alice@acme.test", false).await;
    let admin_tab = app.signed_in(&admin).await;
    let alice_tab = app.signed_in(&alice).await;

    for typed in ["acm", "ACME", "globex", ""] {
        let response = admin_tab
            .post_form("/admin/org-logout", &[("slug", typed)])
            .await;

        assert_is_redirect_to(&response, "/admin");
        let page = admin_tab.page("/admin").await;
        assert!(
            page.contains(
                "Nobody was signed out: to sign out everyone in acme, type its slug, acme, exactly."
            ),
            "{typed:?}: {page}"
        );
    }
    assert!(alice_tab.is_signed_in().await);
    assert_eq!(count(&app.db, "org_logouts"), 0);
    assert_eq!(count(&app.db, "revocations"), 0);
}

#[tokio::test]
async fn a_user_who_is_not_an_admin_cannot_sign_out_everyone() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let alice = app.create_user(org.id, "alice@acme.test", false).await;
    let bob = app.create_user(org.id, "bob@acme.test", false).await;
    let alice_tab = app.signed_in(&alice).await;
    let bob_tab = app.signed_in(&bob).await;

    let response = alice_tab
        .post_form("/admin/org-logout", &[("slug", "acme")])
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        alice_tab.get("/admin/org-logout").await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(alice_tab.is_signed_in().await && bob_tab.is_signed_in().await);
    assert_eq!(count(&app.db, "org_logouts"), 0);
}

#[tokio::test]
async fn a_sign_out_of_everyone_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let alice = app.create_user(org.id, "alice@acme.test", false).await;
    let admin_tab = app.signed_in(&admin).await;
    let alice_tab = app.signed_in(&alice).await;

    for (header, value) in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "https://evil.example"),
    ] {
        let response = admin_tab
            .client
            .post(app.url("/admin/org-logout"))
            .header(header, value)
            .form(&[("slug", "acme")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{header}");
    }
    assert!(alice_tab.is_signed_in().await);
    assert_eq!(count(&app.db, "org_logouts"), 0);
}

#[tokio::test]
async fn only_one_sign_out_of_everyone_runs_at_a_time_in_an_org() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let alice = app.create_user(org.id, "alice@acme.test", false).await;
    let admin_tab = app.signed_in(&admin).await;
    let alice_tab = app.signed_in(&alice).await;
    // A run going on another instance.
    app.db
        .connect()
        .batch_execute(&format!(
            "INSERT INTO org_logouts (org_id, source, actor, users_total, users_done)
             VALUES ('{}', 'operator', 'command line', 2, 1)",
            org.id
        ))
        .unwrap();

    let response = admin_tab
        .post_form("/admin/org-logout", &[("slug", "acme")])
        .await;

    assert_is_redirect_to(&response, "/admin");
    let page = admin_tab.page("/admin").await;
    assert!(
        page.contains("A sign-out of everyone in acme is already running (1 of 2 users"),
        "{page}"
    );
    assert!(alice_tab.is_signed_in().await, "nothing more ended");

    // A run whose instance went away (no progress for minutes) no longer blocks.
    app.db
        .connect()
        .batch_execute("UPDATE org_logouts SET updated_at = now() - interval '10 minutes'")
        .unwrap();
    let response = admin_tab
        .post_form("/admin/org-logout", &[("slug", "acme")])
        .await;
    assert_is_redirect_to(&response, "/admin");
    let run = finished_run(&admin_tab).await;
    assert_eq!(run["users_done"], 2);
    alice_tab.assert_signed_out().await;
    assert_eq!(
        count(&app.db, "org_logouts WHERE failure LIKE 'interrupted%'"),
        1,
        "the dead run is closed as interrupted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_logout_all_on_the_command_line_spares_nobody_and_prints_its_counts_as_json() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let alice = app.create_user(org.id, "alice@acme.test", false).await;
    let globex = app.create_org("globex").await;
    let carol = app.create_user(globex.id, "carol@globex.test", false).await;
    give_token(&app, "alice@acme.test");
    give_token(&app, "carol@globex.test");
    let admin_tab = app.signed_in(&admin).await;
    let alice_tabs = [app.signed_in(&alice).await, app.signed_in(&alice).await];
    let carol_tab = app.signed_in(&carol).await;
    let mut alice_events = EventStream::open(&alice_tabs[0], "/events").await.unwrap();

    let output = tokio::task::block_in_place(|| {
        run_cli(
            &app.db,
            &["org", "logout-all", "acme", "--json"],
            None,
            "warn",
        )
    });

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::json!({ "users": 2, "sessions_ended": 3, "tokens_revoked": 1 })
    );
    assert!(hears_logout(&mut alice_events).await, "open tabs are told");
    admin_tab.assert_signed_out().await;
    for tab in &alice_tabs {
        tab.assert_signed_out().await;
    }
    assert!(carol_tab.is_signed_in().await, "another org is untouched");
    assert_eq!(count(&app.db, "access_tokens WHERE revoked_at IS NULL"), 1);
    assert_eq!(
        count(
            &app.db,
            &format!(
                "revocations WHERE org_id = '{}' AND source = 'operator'",
                org.id
            )
        ),
        2
    );

    let unknown = tokio::task::block_in_place(|| {
        run_cli(&app.db, &["org", "logout-all", "nope"], None, "warn")
    });
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no org with the slug `nope`"));
}

#[tokio::test]
async fn signing_out_ten_thousand_users_ends_every_session_and_token_batch_by_batch() {
    // Arrange: 10,000 users with five sessions each and a token each tenth, plus the admin.
    let app = spawn_app().await;
    let org = app.create_org("big").await;
    let admin = app.create_user(org.id, "admin@big.test", true).await;
    let other = app.create_org("other").await;
    let outsider = app.create_user(other.id, "out@other.test", false).await;
    let outsider_tab = app.signed_in(&outsider).await;
    app.db
        .connect()
        .batch_execute(&format!(
            "INSERT INTO users (org_id, email)
               SELECT '{org}', 'u' || i || '@big.test' FROM generate_series(1, 10000) AS i;
             SET session_replication_role = replica;
             INSERT INTO sessions (id, user_id, org_id, state, expires_at)
               SELECT sha256(convert_to(u.id::text || k, 'UTF8')), u.id, u.org_id, '{{}}',
                      now() + interval '1 day'
               FROM users u, generate_series(1, 5) AS k WHERE u.org_id = '{org}';
             SET session_replication_role = DEFAULT;
             INSERT INTO access_tokens (user_id, name, prefix, token_hash)
               SELECT id, 'cli', 'pat_' || left(md5(id::text), 12), sha256(convert_to(email, 'UTF8'))
               FROM users WHERE org_id = '{org}' AND email LIKE '%0@big.test';",
            org = org.id
        ))
        .unwrap();
    let spared: SessionId = {
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        use diesel_async::RunQueryDsl as _;
        use ual_todo::db::schema::sessions;
        sessions::table
            .filter(sessions::user_id.eq(admin.user.id))
            .select(sessions::public_id)
            .first(&mut *app.conn().await)
            .await
            .unwrap()
    };
    let tokens = count(&app.db, "access_tokens");

    // Act
    let started = std::time::Instant::now();
    let by = Requester::new(RevocationSource::Admin, "admin admin@big.test", "req-1");
    let run = sign_out_org(&mut *app.conn().await, org.id, Some(spared), by)
        .await
        .unwrap();
    let took = started.elapsed();

    // Assert
    assert_eq!(run.users_done, 10_001);
    assert_eq!(run.sessions_ended, 10_001 * 5 - 1);
    assert_eq!(run.tokens_revoked, tokens);
    assert!(run.finished_at.is_some() && run.failure.is_none());
    assert_eq!(
        count(&app.db, &format!("sessions WHERE org_id = '{}'", org.id)),
        1,
        "only the spared session is left"
    );
    assert_eq!(
        count(&app.db, &format!("sessions WHERE public_id = '{spared}'")),
        1
    );
    assert_eq!(count(&app.db, "access_tokens WHERE revoked_at IS NULL"), 0);
    let audited = format!(
        "revocations WHERE org_id = '{}' AND source = 'admin' AND action = 'revoke'",
        org.id
    );
    assert_eq!(count(&app.db, &audited), 10_001, "one audit row per user");
    assert_eq!(
        count(
            &app.db,
            &format!("(SELECT DISTINCT user_id FROM {audited}) AS u")
        ),
        10_001
    );
    // Each batch is its own transaction (its own `now()`): 500 users each, never one giant one.
    assert_eq!(
        count(
            &app.db,
            &format!("(SELECT DISTINCT created_at FROM {audited}) AS b")
        ),
        21
    );
    assert!(
        outsider_tab.is_signed_in().await,
        "another org is untouched"
    );
    eprintln!("signed out 10,001 users and 50,004 sessions in {took:?} (debug build)");
}
