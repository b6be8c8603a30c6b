//! Sign-in under attack: concurrent guesses cannot exceed the limits, password hashing stays
//! bounded in memory, a lockout belongs to one (org, account), and the session list records the
//! client's address as the limits see it.

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::helpers::{TestApp, assert_is_redirect_to, count, serve, spawn_app, spawn_app_with};

/// Password verifications this app has run, from its `/metrics`.
async fn password_checks(app: &TestApp) -> u64 {
    let text = app.browser().get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("ual_todo_password_checks_total "))
        .expect("the metric is exported")
        .parse()
        .unwrap()
}

/// Runs `n` sign-ins at once, each in its own browser; their statuses.
async fn sign_in_at_once(
    app: &TestApp,
    n: usize,
    form: impl Fn(usize) -> (String, String),
) -> Vec<StatusCode> {
    join_all((0..n).map(|i| {
        let (email, password) = form(i);
        let browser = app.browser();
        async move { browser.login(&email, &password).await.status() }
    }))
    .await
}

fn tally(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn forty_concurrent_wrong_passwords_for_one_account_evaluate_at_most_ten() {
    let app = spawn_app().await;
    app.alice().await;

    let statuses = sign_in_at_once(&app, 40, |_| {
        ("alice@acme.test".into(), "not her password".into())
    })
    .await;

    let evaluated = tally(&statuses, StatusCode::UNAUTHORIZED);
    assert!(
        evaluated <= 10,
        "{evaluated} wrong passwords were evaluated"
    );
    assert_eq!(
        evaluated + tally(&statuses, StatusCode::TOO_MANY_REQUESTS),
        40,
        "the others are refused: {statuses:?}"
    );
    assert!(password_checks(&app).await <= 10);
}

#[tokio::test]
async fn sixty_concurrent_unknown_email_sign_ins_from_one_address_evaluate_at_most_fifty() {
    let app = spawn_app().await;

    let statuses = sign_in_at_once(&app, 60, |i| {
        (format!("nobody{i}@acme.test"), "a guess".into())
    })
    .await;

    let evaluated = tally(&statuses, StatusCode::UNAUTHORIZED);
    assert!(evaluated <= 50, "{evaluated} sign-ins were evaluated");
    assert!(tally(&statuses, StatusCode::TOO_MANY_REQUESTS) >= 10);
    assert!(password_checks(&app).await <= 50);
}

#[tokio::test]
async fn a_correct_password_from_another_address_signs_in_while_an_account_is_flooded() {
    let app = spawn_app_with(|s| s.trust_proxy_headers = true).await;
    let alice = app.alice().await;
    app.create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    let flood = join_all((0..40).map(|_| {
        let attacker = app.browser_from("198.51.100.7");
        async move { attacker.login("bob@acme.test", "a guess").await.status() }
    }));
    let user = app.browser_from("203.0.113.9");

    let (_, signed_in) = tokio::join!(flood, user.login("alice@acme.test", &alice.password));

    assert_is_redirect_to(&signed_in, "/todos");
}

#[tokio::test]
async fn a_success_in_another_org_does_not_clear_the_lockout_of_the_same_email() {
    let app = spawn_app().await;
    let a = app.create_org("org-a").await;
    let b = app.create_org("org-b").await;
    let in_a = app.create_user(a.id, "shared@x.test", false).await;
    let in_b = app.create_user(b.id, "shared@x.test", false).await;
    let sign_in = |org: &'static str, password: String| {
        let browser = app.browser();
        async move {
            browser
                .post_form(
                    "/login",
                    &[
                        ("email", "shared@x.test"),
                        ("password", &password),
                        ("org", org),
                    ],
                )
                .await
        }
    };
    for _ in 0..9 {
        let wrong = sign_in("org-a", "a guess".into()).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }

    assert_is_redirect_to(&sign_in("org-b", in_b.password.clone()).await, "/todos");
    let tenth = sign_in("org-a", "a guess".into()).await;
    assert_eq!(tenth.status(), StatusCode::UNAUTHORIZED);

    let locked = sign_in("org-a", in_a.password.clone()).await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "org A's account is still locked"
    );
    assert_is_redirect_to(&sign_in("org-b", in_b.password).await, "/todos");
}

#[tokio::test]
async fn sixty_concurrent_sign_ins_keep_the_server_under_600_mb() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    // Ten each for six accounts: within every account's limit.
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(
            app.create_user(org.id, &format!("user{i}@acme.test"), false)
                .await,
        );
    }
    let (mut server, address) = serve(&app.db);

    let statuses = join_all((0..60).map(|i| {
        let mut browser = app.browser();
        browser.base = address.clone();
        let user = &users[i % users.len()];
        async move {
            browser
                .login(&user.user.email, &user.password)
                .await
                .status()
        }
    }))
    .await;

    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    println!("peak RSS of the server: {} MB", peak_kib / 1000);
    assert!(
        peak_kib < 600 * 1000,
        "the server peaked at {} MB",
        peak_kib / 1000
    );
    // One address may have 50 attempts in flight (the rest get 429); on a loaded machine some
    // may wait too long for a hashing thread (503): either way, told to come back.
    let refused = [
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ];
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || refused.contains(s)),
        "signed in, or told to come back: {statuses:?}"
    );
    assert!(
        tally(&statuses, StatusCode::SEE_OTHER) >= 10,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_session_records_the_forwarded_client_address_behind_a_trusted_proxy() {
    let app = spawn_app_with(|s| s.trust_proxy_headers = true).await;
    let alice = app.alice().await;

    let browser = app.browser_from("203.0.113.7");
    assert_is_redirect_to(
        &browser.login("alice@acme.test", &alice.password).await,
        "/todos",
    );

    assert_eq!(count(&app.db, "sessions WHERE ip = '203.0.113.7'"), 1);
}

#[tokio::test]
async fn the_session_records_the_peer_address_without_a_trusted_proxy() {
    let app = spawn_app().await;
    let alice = app.alice().await;

    let browser = app.browser_from("203.0.113.7");
    assert_is_redirect_to(
        &browser.login("alice@acme.test", &alice.password).await,
        "/todos",
    );

    assert_eq!(count(&app.db, "sessions WHERE ip = '127.0.0.1'"), 1);
}
