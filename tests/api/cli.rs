//! The `ual-todo` command line, run as a real process.

use std::process::{Command, Output};

use crate::helpers::{TestDb, assert_is_redirect_to, count, run_cli, spawn_app};

fn ual_todo(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Output {
    run_cli(db, args, stdin, "warn")
}

fn stdout_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        text.trim().lines().count(),
        1,
        "exactly one JSON object: {text}"
    );
    serde_json::from_str(text.trim()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn org_create_prints_the_org_as_json() {
    let db = TestDb::new();

    let org = stdout_json(&ual_todo(
        &db,
        &["org", "create", "Globex Corp", "--json"],
        None,
    ));

    assert_eq!(org["name"], "Globex Corp");
    assert_eq!(org["slug"], "globex-corp");
    assert!(org["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    let key = org["api_key"]["key"].as_str().unwrap();
    assert!(key.starts_with("ual_") && key.len() == 48);
    assert_eq!(org["api_key"]["prefix"], &key[..12]);
    assert_eq!(
        count(
            &db,
            &format!("org_api_keys WHERE prefix = '{}'", &key[..12])
        ),
        1
    );
}

/// The status of a Universal Logout call for `email` with `key`.
async fn ual(app: &crate::helpers::TestApp, key: &str, email: &str) -> reqwest::StatusCode {
    let subject = crate::helpers::email_subject(email);
    app.universal_logout(key, &subject).await.status()
}

/// The org `acme` with the user `a@acme.test`, made with the binary; returns the org's first
/// API key.
fn acme_from_the_command_line(app: &crate::helpers::TestApp) -> String {
    let org = stdout_json(&ual_todo(
        &app.db,
        &["org", "create", "Acme", "--json"],
        None,
    ));
    let user = ual_todo(
        &app.db,
        &["user", "create", "--org", "acme", "--email", "a@acme.test"],
        None,
    );
    assert!(user.status.success(), "stderr: {}", stderr(&user));
    org["api_key"]["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn api_keys_are_created_listed_and_revoked_from_the_command_line() {
    let app = spawn_app().await;
    let first = acme_from_the_command_line(&app);

    let second = stdout_json(&ual_todo(
        &app.db,
        &["key", "create", "--org", "acme", "--json"],
        None,
    ));
    let second_key = second["key"].as_str().unwrap().to_owned();
    assert_eq!(
        ual(&app, &first, "a@acme.test").await,
        reqwest::StatusCode::NO_CONTENT
    );
    assert_eq!(
        ual(&app, &second_key, "a@acme.test").await,
        reqwest::StatusCode::NO_CONTENT
    );

    let revoked = stdout_json(&ual_todo(
        &app.db,
        &["key", "revoke", "--org", "acme", &first[..12], "--json"],
        None,
    ));
    assert_eq!(revoked["prefix"], &first[..12]);
    assert_eq!(
        ual(&app, &first, "a@acme.test").await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ual(&app, &second_key, "a@acme.test").await,
        reqwest::StatusCode::NO_CONTENT
    );

    let listed = stdout_json(&ual_todo(
        &app.db,
        &["key", "list", "--org", "acme", "--json"],
        None,
    ));
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        !listed.to_string().contains(&second_key[12..]),
        "listing never shows a key"
    );
    assert_eq!(
        keys.iter().filter(|k| k["revoked_at"].is_number()).count(),
        1
    );

    let again = ual_todo(
        &app.db,
        &["key", "revoke", "--org", "acme", &first[..12]],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("no live API key with the prefix"));
}

#[test]
fn set_idp_records_the_orgs_issuer_and_client() {
    let db = TestDb::new();
    ual_todo(&db, &["org", "create", "Acme"], None);

    let idp = stdout_json(&ual_todo(
        &db,
        &[
            "org",
            "set-idp",
            "acme",
            "--issuer",
            "https://acme.okta.com/",
            "--client-id",
            "0oa123",
            "--json",
        ],
        None,
    ));
    let bad = ual_todo(
        &db,
        &[
            "org",
            "set-idp",
            "acme",
            "--issuer",
            "not a url",
            "--client-id",
            "x",
        ],
        None,
    );

    assert_eq!(idp["issuer"], "https://acme.okta.com");
    assert_eq!(idp["client_id"], "0oa123");
    assert_eq!(
        count(
            &db,
            "orgs WHERE idp_issuer = 'https://acme.okta.com' AND idp_client_id = '0oa123'"
        ),
        1
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn org_create_refuses_a_taken_slug_with_status_1() {
    let db = TestDb::new();
    ual_todo(&db, &["org", "create", "Acme"], None);

    let again = ual_todo(&db, &["org", "create", "Other", "--slug", "acme"], None);

    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("an org with the slug `acme` already exists"));
    assert_eq!(count(&db, "orgs"), 1);
}

#[test]
fn bad_arguments_exit_with_status_2_and_a_message() {
    let db = TestDb::new();

    let bad_slug = ual_todo(
        &db,
        &["org", "create", "Acme", "--slug", "Not A Slug"],
        None,
    );
    let bad_email = ual_todo(
        &db,
        &["user", "create", "--org", "acme", "--email", "not-an-email"],
        None,
    );
    let missing_email = ual_todo(&db, &["user", "create", "--org", "acme"], None);
    let unknown_command = ual_todo(&db, &["frobnicate"], None);

    for output in [&bad_slug, &bad_email, &missing_email, &unknown_command] {
        assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
        assert!(!stderr(output).contains("panicked"));
    }
    assert!(stderr(&bad_slug).contains("is not a valid slug"));
    assert!(stderr(&bad_email).contains("is not an email address"));
    assert_eq!(
        count(&db, "orgs") + count(&db, "users"),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn user_create_generates_a_password_that_signs_in() {
    let app = spawn_app().await;
    app.create_org("acme").await;

    let user = stdout_json(&ual_todo(
        &app.db,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "Carol@Acme.test",
            "--admin",
            "--json",
        ],
        None,
    ));

    assert_eq!(user["email"], "Carol@Acme.test");
    assert_eq!(user["admin"], true);
    let password = user["password"].as_str().unwrap();
    assert!(password.len() >= 20);
    assert_is_redirect_to(
        &app.browser().login("carol@acme.test", password).await,
        "/todos",
    );
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin_and_does_not_echo_it() {
    let app = spawn_app().await;
    app.create_org("acme").await;

    let output = ual_todo(
        &app.db,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "dave@acme.test",
            "--password-stdin",
            "--json",
        ],
        Some("a long enough secret\n"),
    );

    let user = stdout_json(&output);
    assert!(user.get("password").is_none());
    assert_is_redirect_to(
        &app.browser()
            .login("dave@acme.test", "a long enough secret")
            .await,
        "/todos",
    );
}

#[test]
fn user_create_refuses_a_short_password_from_stdin() {
    let db = TestDb::new();
    ual_todo(&db, &["org", "create", "Acme"], None);

    let output = ual_todo(
        &db,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "e@acme.test",
            "--password-stdin",
        ],
        Some("short\n"),
    );

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("at least 10 characters"));
    assert_eq!(count(&db, "users"), 0);
}

#[test]
fn a_duplicate_email_in_an_org_fails_with_status_1_and_writes_nothing() {
    let db = TestDb::new();
    ual_todo(&db, &["org", "create", "Acme"], None);
    ual_todo(
        &db,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "erin@acme.test",
        ],
        None,
    );

    let again = ual_todo(
        &db,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "ERIN@acme.test",
        ],
        None,
    );

    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already has a user with the email ERIN@acme.test"));
    assert_eq!(count(&db, "users"), 1);
}

#[test]
fn user_create_in_an_unknown_org_fails_with_status_1() {
    let db = TestDb::new();

    let output = ual_todo(
        &db,
        &["user", "create", "--org", "nope", "--email", "x@y.test"],
        None,
    );

    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("there is no org with the slug `nope`"));
}

#[tokio::test]
async fn demo_seeds_acme_and_prints_working_logins() {
    let app = spawn_app().await;

    let demo = stdout_json(&ual_todo(&app.db, &["demo", "--json"], None));

    assert_eq!(demo["org"]["slug"], "acme");
    assert!(demo["api_key"].as_str().unwrap().starts_with("ual_"));
    let users = demo["users"].as_array().unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(users.iter().filter(|u| u["admin"] == true).count(), 1);
    for user in users {
        let response = app
            .browser()
            .login(
                user["email"].as_str().unwrap(),
                user["password"].as_str().unwrap(),
            )
            .await;
        assert_is_redirect_to(&response, "/todos");
    }

    // Running it again resets the passwords and adds nobody.
    let again = stdout_json(&ual_todo(&app.db, &["demo", "--json"], None));
    assert_ne!(again["users"][0]["password"], users[0]["password"]);
    assert_eq!(count(&app.db, "users"), 3);
    assert_eq!(count(&app.db, "orgs"), 1);
}

#[test]
fn demo_in_text_says_how_to_sign_in() {
    let db = TestDb::new();

    let output = ual_todo(&db, &["demo"], None);

    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("/login"));
    assert!(text.contains("admin@acme.test"));
    assert!(text.contains("alice@acme.test"));
}

#[test]
fn an_unreachable_database_is_one_clear_line_without_a_panic() {
    let output = Command::new(env!("CARGO_BIN_EXE_ual-todo"))
        .arg("migrate")
        .env("DATABASE_URL", "postgres://app:sekret@127.0.0.1:1/ual_todo")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();

    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(
            "cannot connect to PostgreSQL at postgres://app:********@127.0.0.1:1/ual_todo"
        )
    );
    assert!(err.contains("DATABASE_URL"));
    assert!(!err.contains("sekret"), "the password is hidden");
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

#[test]
fn serve_with_an_unreachable_database_exits_with_one_clear_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_ual-todo"))
        .env("DATABASE_URL", "postgres://127.0.0.1:1/ual_todo")
        .env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();

    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: cannot connect to PostgreSQL at postgres://127.0.0.1:1/ual_todo")
    );
}

#[tokio::test]
async fn user_set_admin_demotes_and_the_live_feed_closes_at_once() {
    use crate::admin_roles::{acme, assert_feed_ends, is_admin, wait_for};
    let a = acme().await;
    let other = a.app.signed_in(&a.other_admin).await;
    let mut feed = crate::helpers::EventStream::open(&other, "/admin/events")
        .await
        .unwrap();
    wait_for(&a.app.hub, 1).await;
    let set_admin = |email: &str, value: &str| {
        let args = [
            "user",
            "set-admin",
            "--org",
            "acme",
            "--email",
            email,
            value,
            "--json",
        ];
        ual_todo(&a.app.db, &args, None)
    };

    // Blocks this test's runtime while the process runs; the app's workers run on their own.
    let demoted = stdout_json(&set_admin("OTHER@acme.test", "false"));

    assert_eq!(demoted["email"], "other@acme.test");
    assert_eq!(
        (&demoted["admin"], &demoted["changed"]),
        (&false.into(), &true.into())
    );
    assert!(!is_admin(&a.app, &a.other_admin).await);
    assert_feed_ends(&a, &mut feed).await;
    let again = stdout_json(&set_admin("other@acme.test", "false"));
    assert_eq!(again["changed"], false);
    let last = set_admin("admin@acme.test", "false");
    assert_eq!(last.status.code(), Some(1));
    assert!(stderr(&last).contains("the only administrator of `acme`"));
    assert!(is_admin(&a.app, &a.admin).await);
    let unknown = set_admin("nobody@acme.test", "true");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no user with the email nobody@acme.test"));
    assert_eq!(set_admin("alice@acme.test", "maybe").status.code(), Some(2));
    let promoted = stdout_json(&set_admin("alice@acme.test", "true"));
    assert_eq!(
        (&promoted["admin"], &promoted["changed"]),
        (&true.into(), &true.into())
    );
    assert!(is_admin(&a.app, &a.alice).await);
}

#[tokio::test]
async fn org_disable_makes_universal_logout_answer_403_until_org_enable() {
    let app = spawn_app().await;
    let key = acme_from_the_command_line(&app);

    let disabled = stdout_json(&ual_todo(
        &app.db,
        &["org", "disable", "acme", "--json"],
        None,
    ));

    assert_eq!(
        (
            &disabled["slug"],
            &disabled["disabled"],
            &disabled["changed"]
        ),
        (&"acme".into(), &true.into(), &true.into())
    );
    assert_eq!(
        ual(&app, &key, "a@acme.test").await,
        reqwest::StatusCode::FORBIDDEN
    );
    let again = stdout_json(&ual_todo(
        &app.db,
        &["org", "disable", "acme", "--json"],
        None,
    ));
    assert_eq!(again["changed"], false);

    let enabled = ual_todo(&app.db, &["org", "enable", "acme"], None);

    assert!(enabled.status.success(), "stderr: {}", stderr(&enabled));
    assert!(String::from_utf8_lossy(&enabled.stdout).contains("`acme` is now enabled"));
    assert_eq!(count(&app.db, "orgs WHERE disabled_at IS NULL"), 1);
    assert_eq!(
        ual(&app, &key, "a@acme.test").await,
        reqwest::StatusCode::NO_CONTENT
    );
}

#[test]
fn org_disable_of_an_unknown_org_fails_with_status_1_and_a_clear_message() {
    let db = TestDb::new();

    let disable = ual_todo(&db, &["org", "disable", "nope"], None);
    let enable = ual_todo(&db, &["org", "enable", "nope", "--json"], None);

    for output in [&disable, &enable] {
        assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(output));
        assert!(stderr(output).contains("there is no org with the slug `nope`"));
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test]
async fn the_dashboard_says_when_the_operator_has_disabled_the_org() {
    let app = spawn_app().await;
    let org = app.create_org("acme").await;
    let admin = app.create_user(org.id, "admin@acme.test", true).await;
    let browser = app.signed_in(&admin).await;
    let notice = "acme is disabled by the operator";
    assert!(!browser.page("/admin").await.contains(notice));

    ual_todo(&app.db, &["org", "disable", "acme"], None);

    assert!(browser.page("/admin").await.contains(notice));
    ual_todo(&app.db, &["org", "enable", "acme"], None);
    assert!(!browser.page("/admin").await.contains(notice));
}
