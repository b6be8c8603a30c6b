//! Signing in and out, and cross-site request protection.

use reqwest::StatusCode;

use crate::helpers::{assert_is_redirect_to, count, spawn_app};

#[tokio::test]
async fn correct_password_signs_in_and_shows_the_todos() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.browser();

    let response = browser.login("alice@acme.test", &alice.password).await;

    assert_is_redirect_to(&response, "/todos");
    let page = browser.page("/todos").await;
    assert!(
        page.contains("alice@acme.test"),
        "the header names the user"
    );
    assert!(page.contains("Your todos"));
}

#[tokio::test]
async fn email_is_matched_whatever_its_case() {
    let app = spawn_app().await;
    let alice = app.alice().await;

    let response = app
        .browser()
        .login("  ALICE@Acme.Test ", &alice.password)
        .await;

    assert_is_redirect_to(&response, "/todos");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let alice = app.alice().await;

    let unknown = app
        .browser()
        .login("nobody@acme.test", &alice.password)
        .await;
    let wrong = app
        .browser()
        .login("alice@acme.test", "not-the-password")
        .await;

    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (unknown, wrong) = (unknown.text().await.unwrap(), wrong.text().await.unwrap());
    assert!(unknown.contains("That email and password do not match an account."));
    assert_eq!(
        unknown.replace("nobody@acme.test", "EMAIL"),
        wrong.replace("alice@acme.test", "EMAIL"),
        "the two pages differ only by the email typed"
    );
    assert_eq!(
        count(&app.db, "sessions"),
        0,
        "no session for a failed sign-in"
    );
}

#[tokio::test]
async fn sign_in_form_with_missing_fields_is_a_bad_request() {
    let app = spawn_app().await;
    let browser = app.browser();

    let empty = browser
        .post_form("/login", &[("email", ""), ("password", "")])
        .await;
    let no_password_field = browser.post_form("/login", &[("email", "a@b.c")]).await;

    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("Enter your email and your password.")
    );
    assert_eq!(no_password_field.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn overlong_password_is_refused_before_hashing() {
    let app = spawn_app().await;
    app.alice().await;

    let response = app
        .browser()
        .login("alice@acme.test", &"x".repeat(5000))
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("too long"));
}

#[tokio::test]
async fn the_same_email_in_two_orgs_asks_for_the_org_only_when_both_passwords_match() {
    let app = spawn_app().await;
    let acme = app.create_org("acme").await;
    let globex = app.create_org("globex").await;
    let at_acme = app.create_user(acme.id, "sam@example.test", false).await;
    let at_globex = app.create_user(globex.id, "sam@example.test", false).await;

    // Different passwords: each one picks its account.
    let browser = app.browser();
    assert_is_redirect_to(
        &browser.login("sam@example.test", &at_globex.password).await,
        "/todos",
    );
    assert!(browser.page("/todos").await.contains("sam@example.test"));

    // With the org named, only that org's account is tried.
    let wrong_org = app
        .browser()
        .post_form(
            "/login",
            &[
                ("email", "sam@example.test"),
                ("password", &at_acme.password),
                ("org", "globex"),
            ],
        )
        .await;
    assert_eq!(wrong_org.status(), StatusCode::UNAUTHORIZED);
    let right_org = app
        .browser()
        .post_form(
            "/login",
            &[
                ("email", "sam@example.test"),
                ("password", &at_acme.password),
                ("org", "acme"),
            ],
        )
        .await;
    assert_is_redirect_to(&right_org, "/todos");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_audits_it() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let stolen = browser.clone_cookies();

    let response = browser.post_form("/logout", &[]).await;

    assert_is_redirect_to(&response, "/login?reason=signed_out");
    browser.assert_signed_out().await;
    stolen.assert_signed_out().await;
    assert_eq!(count(&app.db, "sessions"), 0);
    assert_eq!(
        count(
            &app.db,
            "revocations WHERE source = 'self' AND sessions_ended = 1"
        ),
        1
    );
    let page = browser.page("/login?reason=signed_out").await;
    assert!(page.contains("You signed out."));
}

#[tokio::test]
async fn signing_out_leaves_the_users_other_sessions_alone() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let laptop = app.signed_in(&alice).await;
    let phone = app.signed_in(&alice).await;

    laptop.post_form("/logout", &[]).await;

    assert!(phone.is_signed_in().await);
}

#[tokio::test]
async fn a_signed_in_user_visiting_the_sign_in_page_goes_to_the_todos() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    assert_is_redirect_to(&browser.get("/login").await, "/todos");
}

#[tokio::test]
async fn forms_posted_from_another_site_are_refused() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;
    let url = app.url("/todos");

    let cross_site = browser
        .client
        .post(&url)
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("title", "planted")])
        .send()
        .await
        .unwrap();
    let foreign_origin = browser
        .client
        .post(&url)
        .header("Origin", "https://evil.example")
        .form(&[("title", "planted")])
        .send()
        .await
        .unwrap();
    let same_site_sibling = browser
        .client
        .post(&url)
        .header("Sec-Fetch-Site", "same-site")
        .form(&[("title", "planted")])
        .send()
        .await
        .unwrap();

    for response in [cross_site, foreign_origin, same_site_sibling] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("sent from another site")
        );
    }
    assert_eq!(count(&app.db, "todos"), 0, "nothing was saved");
}

#[tokio::test]
async fn sign_in_from_another_site_is_refused() {
    let app = spawn_app().await;
    let alice = app.alice().await;

    let response = app
        .browser()
        .client
        .post(app.url("/login"))
        .header("Origin", "https://evil.example")
        .form(&[
            ("email", "alice@acme.test"),
            ("password", alice.password.as_str()),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app.db, "sessions"), 0);
}

#[tokio::test]
async fn sign_out_from_another_site_is_refused() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let browser = app.signed_in(&alice).await;

    let response = browser
        .client
        .post(app.url("/logout"))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(browser.is_signed_in().await);
}
