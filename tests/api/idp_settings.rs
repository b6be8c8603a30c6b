//! Who may set what about an org's identity provider: https issuers only, a changed issuer or
//! client id drops the stored client secret, and only the operator assigns email domains.

use std::process::Output;

use crate::helpers::{
    Browser, TestApp, TestDb, assert_is_redirect_to, count, run_cli, run_cli_strict, spawn_app,
    spawn_app_with,
};

/// An app with org `acme` and a browser signed in as its admin.
async fn admin() -> (TestApp, Browser) {
    admin_of(spawn_app().await).await
}

async fn admin_of(app: TestApp) -> (TestApp, Browser) {
    let acme = app.create_org("acme").await;
    let admin = app.create_user(acme.id, "admin@acme.test", true).await;
    let browser = app.signed_in(&admin).await;
    (app, browser)
}

/// Posts the IdP form; the page shown after its redirect.
async fn save_idp(browser: &Browser, form: &[(&str, &str)]) -> String {
    let saved = browser.post_form("/admin/idp", form).await;
    assert_is_redirect_to(&saved, "/admin/keys");
    browser.page("/admin/keys").await
}

fn has_secret(db: &TestDb) -> bool {
    count(
        db,
        "orgs WHERE slug = 'acme' AND idp_client_secret IS NOT NULL",
    ) == 1
}

#[tokio::test]
async fn the_admin_form_refuses_a_plain_http_issuer_off_loopback() {
    let (app, browser) = admin().await;

    let page = save_idp(
        &browser,
        &[("issuer", "http://idp.acme.test"), ("client_id", "0oa1")],
    )
    .await;

    assert!(page.contains("must be an https:// URL"), "{page}");
    assert_eq!(count(&app.db, "orgs WHERE idp_issuer IS NOT NULL"), 0);
}

#[tokio::test]
async fn without_the_insecure_flag_the_admin_form_refuses_loopback_issuers() {
    let app = spawn_app_with(|settings| settings.allow_insecure_idp = false).await;
    let (app, browser) = admin_of(app).await;

    for issuer in [
        "http://127.0.0.1:8443",
        "https://127.0.0.1:8443",
        "https://[::1]",
    ] {
        let page = save_idp(&browser, &[("issuer", issuer), ("client_id", "0oa1")]).await;
        assert!(page.contains("The issuer"), "{issuer}: {page}");
    }

    assert_eq!(count(&app.db, "orgs WHERE idp_issuer IS NOT NULL"), 0);
}

#[tokio::test]
async fn changing_the_issuer_or_client_id_in_the_admin_form_drops_the_stored_secret() {
    let (app, browser) = admin().await;
    let first = [
        ("issuer", "https://acme.okta.com"),
        ("client_id", "0oa1"),
        ("client_secret", "the-real-secret"),
    ];
    save_idp(&browser, &first).await;
    assert!(has_secret(&app.db));

    // Same issuer and client, blank secret: kept.
    save_idp(&browser, &first[..2]).await;
    assert!(has_secret(&app.db), "an unchanged IdP keeps its secret");

    // Another issuer (an attacker's server), blank secret: the stored secret must not follow it.
    let page = save_idp(
        &browser,
        &[
            ("issuer", "https://attacker.example"),
            ("client_id", "0oa1"),
        ],
    )
    .await;
    assert!(!has_secret(&app.db), "the secret is gone");
    assert!(page.contains("client secret was removed"), "{page}");

    // Back to the first issuer with a secret, then another client id: dropped too.
    save_idp(&browser, &first).await;
    save_idp(
        &browser,
        &[("issuer", "https://acme.okta.com"), ("client_id", "0oa2")],
    )
    .await;
    assert!(!has_secret(&app.db));
}

#[tokio::test]
async fn an_admin_cannot_claim_an_email_domain() {
    let (app, browser) = admin().await;

    for domain in ["globex.test", "gmail.com"] {
        save_idp(
            &browser,
            &[
                ("issuer", "https://acme.okta.com"),
                ("client_id", "0oa1"),
                ("email_domain", domain),
            ],
        )
        .await;
    }

    assert_eq!(count(&app.db, "orgs WHERE email_domain IS NOT NULL"), 0);
    assert!(
        !browser
            .page("/admin/keys")
            .await
            .contains("name=\"email_domain\""),
        "the form has no email domain field"
    );
}

#[tokio::test]
async fn the_admin_form_shows_the_operators_email_domain_read_only() {
    let (app, browser) = admin().await;
    let cli = run_cli(
        &app.db,
        &[
            "org",
            "set-idp",
            "acme",
            "--issuer",
            "https://acme.okta.com",
            "--client-id",
            "0oa1",
            "--email-domain",
            "acme.test",
        ],
        None,
        "warn",
    );
    assert!(cli.status.success(), "{cli:?}");

    let page = save_idp(
        &browser,
        &[
            ("issuer", "https://acme.okta.com"),
            ("client_id", "0oa1"),
            ("email_domain", ""),
        ],
    )
    .await;

    assert!(page.contains("acme.test"));
    assert_eq!(count(&app.db, "orgs WHERE email_domain = 'acme.test'"), 1);
}

/// `ual-todo org set-idp acme ARGS` as the operator runs it: no `ALLOW_INSECURE_IDP`.
fn set_idp(db: &TestDb, args: &[&str], secret: Option<&str>) -> Output {
    run_cli_strict(db, &[&["org", "set-idp", "acme"], args].concat(), secret)
}

fn acme_db() -> TestDb {
    let db = TestDb::new();
    assert!(
        run_cli(&db, &["org", "create", "Acme"], None, "warn")
            .status
            .success()
    );
    db
}

#[test]
fn set_idp_refuses_a_plain_http_issuer_without_the_insecure_flag() {
    let db = acme_db();

    for issuer in ["http://idp.acme.test", "http://127.0.0.1:8443"] {
        let refused = set_idp(&db, &["--issuer", issuer, "--client-id", "0oa1"], None);
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("https://"));
    }

    assert_eq!(count(&db, "orgs WHERE idp_issuer IS NOT NULL"), 0);
}

#[test]
fn set_idp_drops_the_stored_secret_when_the_issuer_changes() {
    let db = acme_db();
    let with_secret = [
        "--issuer",
        "https://acme.okta.com",
        "--client-id",
        "0oa1",
        "--client-secret-stdin",
    ];
    assert!(set_idp(&db, &with_secret, Some("s3cret")).status.success());
    assert!(has_secret(&db));

    let moved = set_idp(
        &db,
        &["--issuer", "https://other.example", "--client-id", "0oa1"],
        None,
    );

    assert!(moved.status.success(), "{moved:?}");
    assert!(!has_secret(&db), "the secret stays with its issuer");
    assert!(String::from_utf8_lossy(&moved.stdout).contains("client secret was removed"));
}

#[test]
fn set_idp_refuses_public_mail_domains() {
    let db = acme_db();

    for domain in ["gmail.com", "outlook.com", "proton.me"] {
        let refused = set_idp(
            &db,
            &[
                "--issuer",
                "https://acme.okta.com",
                "--client-id",
                "0oa1",
                "--email-domain",
                domain,
            ],
            None,
        );
        assert_eq!(refused.status.code(), Some(2), "{domain}: {refused:?}");
    }

    assert_eq!(count(&db, "orgs WHERE email_domain IS NOT NULL"), 0);
}
