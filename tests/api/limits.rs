//! Abuse limits: failed sign-ins per account and per address, failed Universal Logout
//! authentications per address (a valid call is refused only from an address over its failure limit).

use reqwest::StatusCode;

use crate::helpers::{
    assert_is_redirect_to, assert_json_error, email_subject, spawn_app, spawn_app_with,
    universal_logout_request,
};

#[tokio::test]
async fn ten_failed_sign_ins_lock_the_account_for_a_while() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let bob = app
        .create_user(alice.user.org_id, "bob@acme.test", false)
        .await;
    for _ in 0..10 {
        let wrong = app
            .browser()
            .login("alice@acme.test", "not her password")
            .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }

    let locked = app
        .browser()
        .login("ALICE@acme.test", &alice.password)
        .await;

    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let wait: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins. Try again in 15 minutes.")
    );
    assert_is_redirect_to(
        &app.browser().login("bob@acme.test", &bob.password).await,
        "/todos",
    );
}

#[tokio::test]
async fn many_failures_from_one_address_stop_its_sign_ins() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    for i in 0..50 {
        let guess = app
            .browser()
            .login(&format!("user{i}@acme.test"), "guess")
            .await;
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }

    let response = app
        .browser()
        .login("alice@acme.test", &alice.password)
        .await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn an_address_over_its_ual_limit_is_refused_before_any_credential_work() {
    let app = spawn_app_with(|s| s.trust_proxy_headers = true).await;
    let alice = app.alice().await;
    let key = app.api_key(alice.user.org_id).await;
    let client = reqwest::Client::new();
    let subject = email_subject("alice@acme.test");
    let call = async |credential: String, ip: &str| {
        universal_logout_request(&client, &app.address, &credential, &subject)
            .header("X-Forwarded-For", ip)
            .send()
            .await
            .unwrap()
    };
    let attacker = "198.51.100.7";
    for _ in 0..20 {
        assert_eq!(
            call(format!("ual_{}", "x".repeat(44)), attacker)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }

    let limited = call(format!("ual_{}", "y".repeat(44)), attacker).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_json_error(
        limited,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "",
    )
    .await;

    assert_eq!(
        call(key.clone(), attacker).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "refused before the key is even looked up"
    );
    assert_eq!(
        call(key, "203.0.113.9").await.status(),
        StatusCode::NO_CONTENT,
        "an identity provider at another address is not affected"
    );
}

#[tokio::test]
async fn a_burst_of_valid_universal_logouts_from_one_address_is_never_refused() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let key = app.api_key(org.id).await;
    for i in 0..40 {
        app.create_user(org.id, &format!("user{i}@acme.test"), false)
            .await;
    }
    let client = reqwest::Client::new();

    // An identity provider offboarding a team: twice the failure limit, all at once.
    let answers = futures_util::future::join_all((0..40).map(|i| {
        universal_logout_request(
            &client,
            &app.address,
            &key,
            &email_subject(&format!("user{i}@acme.test")),
        )
        .send()
    }))
    .await;

    for answer in answers {
        assert_eq!(answer.unwrap().status(), StatusCode::NO_CONTENT);
    }
}
