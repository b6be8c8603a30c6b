//! No secret ever reaches a log line: a full scenario against the real binary, logging at
//! `debug`, then a search of everything it wrote for every secret involved.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{
        Browser, TestDb, assert_is_redirect_to, email_subject, run_cli, universal_logout_at,
    },
    idp::{self, TestIdp, now, sign},
};

const PASSWORD: &str = "correct horse battery staple";
const CLIENT_SECRET: &str = "client-secret-4f9a2c7e";

/// Runs a CLI command at debug level; returns its stdout, appending its stderr to `logs`.
fn cli(db: &TestDb, args: &[&str], stdin: &str, logs: &Arc<Mutex<String>>) -> String {
    let output = run_cli(db, args, Some(stdin), "debug");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    logs.lock()
        .unwrap()
        .push_str(&String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The app binary, logging at debug level into a shared string.
struct LoggedServer {
    process: std::process::Child,
    address: String,
    collector: std::thread::JoinHandle<()>,
}

impl LoggedServer {
    fn start(db: &TestDb, logs: &Arc<Mutex<String>>) -> LoggedServer {
        let mut process = Command::new(env!("CARGO_BIN_EXE_ual-todo"))
            .env("DATABASE_URL", db.url.expose())
            .env("BIND", "127.0.0.1:0")
            .env("ALLOW_INSECURE_IDP", "true")
            .env("RUST_LOG", "debug")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(process.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().unwrap().unwrap();
            logs.lock().unwrap().push_str(&line);
            if let Some(at) = line.split("serving at ").nth(1) {
                break at.trim().trim_end_matches('/').to_owned();
            }
        };
        let collector = {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let mut logs = logs.lock().unwrap();
                    logs.push_str(&line);
                    logs.push('\n');
                }
            })
        };
        LoggedServer {
            process,
            address,
            collector,
        }
    }

    /// Stops the server gracefully once its last lines are written.
    async fn stop(mut self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        self.process.wait().unwrap();
        self.collector.join().unwrap();
    }
}

#[tokio::test]
async fn a_full_scenario_logs_no_secret() {
    let db = TestDb::new();
    let logs = Arc::new(Mutex::new(String::new()));
    let key = idp::signing_key("rsa", "rsa-1", Algorithm::RS256);
    let idp = TestIdp::start(&[&key]).await;

    let org: serde_json::Value =
        serde_json::from_str(&cli(&db, &["org", "create", "Acme", "--json"], "", &logs)).unwrap();
    let api_key = org["api_key"]["key"].as_str().unwrap().to_owned();
    cli(
        &db,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "alice@acme.test",
            "--password-stdin",
        ],
        PASSWORD,
        &logs,
    );
    cli(
        &db,
        &[
            "org",
            "set-idp",
            "acme",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "acme-app",
            "--client-secret-stdin",
        ],
        CLIENT_SECRET,
        &logs,
    );
    // The org now has SSO: alice's password works only if she is break-glass.
    cli(
        &db,
        &[
            "user",
            "break-glass",
            "--org",
            "acme",
            "--email",
            "alice@acme.test",
            "true",
        ],
        "",
        &logs,
    );

    let server = LoggedServer::start(&db, &logs);
    let address = server.address.clone();
    let app = |base: &str| {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_provider(jar.clone())
                .build()
                .unwrap(),
            jar,
            base: base.to_owned(),
        }
    };
    let mut secrets = vec![
        PASSWORD.to_owned(),
        CLIENT_SECRET.to_owned(),
        api_key.clone(),
        api_key[12..].to_owned(),
    ];

    // A password sign-in, pages, a personal access token and the API.
    let browser = app(&address);
    assert_is_redirect_to(&browser.login("alice@acme.test", PASSWORD).await, "/todos");
    let cookie = browser.cookie_header().unwrap();
    secrets.push(cookie.split_once('=').unwrap().1.to_owned());
    browser.post_form("/todos", &[("title", "buy milk")]).await;
    let page = browser
        .post_form("/settings/tokens", &[("name", "cli")])
        .await
        .text()
        .await
        .unwrap();
    let start = page.find("value=\"pat_").unwrap() + "value=\"".len();
    let pat = page[start..start + 48].to_owned();
    secrets.extend([pat.clone(), pat[12..].to_owned()]);
    let listed = reqwest::Client::new()
        .get(format!("{address}/api/todos"))
        .bearer_auth(&pat)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);

    // Universal Logout with the key, then with a JWT.
    let alice = email_subject("alice@acme.test");
    let ual = async |credential: &str| {
        universal_logout_at(&address, credential, &alice)
            .await
            .status()
    };
    assert_eq!(ual(&api_key).await, StatusCode::NO_CONTENT);
    let jwt = sign(
        &key,
        Some("global-token-revocation+jwt"),
        &idp::ual_claims(&idp.issuer, "acme-app", &address),
    );
    secrets.push(jwt.clone());
    secrets.push(jwt.rsplit('.').next().unwrap().to_owned());
    let again = app(&address);
    assert_is_redirect_to(&again.login("alice@acme.test", PASSWORD).await, "/todos");
    secrets.push(
        again
            .cookie_header()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned(),
    );
    assert_eq!(ual(&jwt).await, StatusCode::NO_CONTENT);

    // Back-channel logout.
    {
        use diesel::RunQueryDsl as _;
        diesel::sql_query(format!(
            "UPDATE users SET oidc_issuer = '{}', oidc_subject = '00u-alice'",
            idp.issuer
        ))
        .execute(&mut db.connect())
        .unwrap();
    }
    let logout_token = sign(
        &key,
        Some("logout+jwt"),
        &json!({ "iss": idp.issuer, "aud": "acme-app", "sub": "00u-alice", "iat": now(), "exp": now() + 120,
                 "jti": "jti-logs-2", "events": { "http://schemas.openid.net/event/backchannel-logout": {} } }),
    );
    secrets.push(logout_token.clone());
    let backchannel = reqwest::Client::new()
        .post(format!("{address}/backchannel-logout"))
        .form(&[("logout_token", logout_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(backchannel.status(), StatusCode::OK);
    // A failed sign-in, with a password that is not the user's.
    app(&address)
        .login("alice@acme.test", "wrong-password-xyz")
        .await;
    secrets.push("wrong-password-xyz".into());

    server.stop().await;

    let logs = logs.lock().unwrap();
    assert!(logs.contains("Universal Logout"), "the scenario was logged");
    assert!(logs.contains("back-channel logout"));
    assert!(logs.lines().count() > 20, "logging at debug level");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the logs: {}…",
            &secret[..secret.len().min(6)]
        );
    }
}

#[tokio::test]
async fn a_log_line_carries_at_most_256_bytes_of_what_a_client_chose() {
    let db = TestDb::new();
    let logs = Arc::new(Mutex::new(String::new()));
    let server = LoggedServer::start(&db, &logs);
    let method = format!("M{}", "A".repeat(16 * 1024));
    let path = format!("/{}", "b".repeat(16 * 1024));

    let client = reqwest::Client::new();
    for (method, path) in [(method.as_str(), "/todos"), ("GET", path.as_str())] {
        client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", server.address),
            )
            // From another site: the refusal is logged at WARN.
            .header("Origin", "https://evil.test")
            .send()
            .await
            .unwrap();
    }
    server.stop().await;

    let logs = logs.lock().unwrap();
    assert!(
        logs.contains("AAAA") && logs.contains("bbbb"),
        "both requests were logged"
    );
    for run in ["A".repeat(257), "b".repeat(257)] {
        let line = logs.lines().find(|line| line.contains(&run));
        assert!(
            line.is_none(),
            "over 256 bytes of client input: {}",
            line.unwrap_or("").replace(&run, "<RUN>")
        );
    }
}
