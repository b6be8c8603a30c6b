//! The Shared Signals transmitter of the tests (`e2e/ssf/transmitter.mjs`, Node's standard
//! library only) as a separate process, and the app's stream at it.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use secrecy::SecretString;
use serde_json::{Value, json};
use ual_todo::{
    auth::idp_http::{FetchPolicy, IdpHttp},
    config::{PublicUrl, Settings},
    db::models::{Delivery, Org, SsfStream},
    secret_box::SecretBox,
    ssf::manage::{self, Setup},
};

use crate::helpers::TestApp;

/// The bearer the transmitter accepts by default.
pub const BEARER: &str = "tx-secret";

/// A running transmitter; killed when dropped.
pub struct Transmitter {
    pub issuer: String,
    process: Child,
    client: reqwest::Client,
}

impl Drop for Transmitter {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Transmitter {
    /// Starts a transmitter with `config` (`SSF_CONFIG`: `port`, `bearers`, `path`, …).
    pub fn start(config: Value) -> Transmitter {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/ssf/transmitter.mjs");
        let mut config = config;
        if config.get("port").is_none() {
            config["port"] = json!(0);
        }
        // Ends when this process does, even if the transmitter is never dropped: its stdin (a
        // pipe this process holds) closes then.
        config["exit_with_stdin"] = json!(true);
        let mut process = Command::new("node")
            .arg(script)
            .env("SSF_CONFIG", config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let drain = {
            let stderr = stderr.clone();
            let pipe = BufReader::new(process.stderr.take().unwrap());
            std::thread::spawn(move || {
                for line in pipe.lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    stderr.lock().unwrap().push_str(&line);
                }
            })
        };
        let mut line = String::new();
        BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let _ = process.wait();
            let _ = drain.join();
            panic!("the transmitter did not start: {}", stderr.lock().unwrap())
        });
        Transmitter {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            process,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.issuer))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Signs `payload` (`options`: `header`, `key: "unpublished"`, `alg`, `secret`).
    pub async fn sign(&self, payload: &Value, options: Value) -> String {
        let mut body = options;
        if body.is_null() {
            body = json!({});
        }
        body["payload"] = payload.clone();
        self.post("/test/sign", &body).await.text().await.unwrap()
    }

    /// Makes the transmitter sign and deliver an event on its newest stream; `request` has
    /// `event_type`, `event`, `sub_id`, and optionally `claims` (overriding), `header`, `key`.
    /// Returns `{token, jti, status, body}` (push) or `{token, jti, queued}` (poll).
    pub async fn event(&self, request: Value) -> Value {
        self.post("/test/event", &request)
            .await
            .json()
            .await
            .unwrap()
    }

    /// Delivers one of the published example payloads (e2e/ssf/examples.json) as printed, but
    /// for the stream's `iss`, `aud`, `iat`, `jti` and the subject identifiers in `vars` (names
    /// the example declares; another is refused).
    pub async fn example(&self, name: &str, vars: Value) -> Value {
        self.example_with(name, vars, false).await
    }

    /// [`Self::example`] with `iat` in milliseconds, as some Okta tenants send times.
    pub async fn example_with(&self, name: &str, vars: Value, iat_ms: bool) -> Value {
        let response = self
            .post(
                "/test/example",
                &json!({ "name": name, "vars": vars, "iat_ms": iat_ms }),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "the transmitter refused: {body}");
        body
    }

    /// Changes the newest stream's status at the transmitter, on its own.
    pub async fn set_status(&self, status: &str, reason: Option<&str>) {
        let response = self
            .post(
                "/test/status",
                &json!({ "status": status, "reason": reason }),
            )
            .await;
        assert!(response.status().is_success());
    }

    /// What the transmitter saw: streams, acks, setErrs, polls, pushes.
    pub async fn state(&self) -> Value {
        self.client
            .get(format!("{}/test/state", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// What `POST /ssf/events` answers a push that presents `header` (with a body that is no SET:
/// the header is checked first).
pub async fn push_status(app: &TestApp, header: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(app.url("/ssf/events"))
        .header("content-type", "application/secevent+jwt")
        .header("authorization", header)
        .body("x.y.z")
        .send()
        .await
        .unwrap()
        .status()
}

/// The instance's secrets box, as the app under test has it.
pub async fn secrets(app: &TestApp) -> SecretBox {
    let settings = Settings::for_database(app.db.url.clone());
    SecretBox::load(&mut *app.conn().await, &settings)
        .await
        .unwrap()
        .0
}

/// The HTTP client the app uses for transmitters (loopback allowed, as in the tests).
pub fn http() -> IdpHttp {
    IdpHttp::new(
        Duration::from_secs(5),
        FetchPolicy {
            allow_insecure: true,
        },
    )
}

/// Sets up `org`'s stream at `tx`, as `org set-ssf` does.
pub async fn configure(
    app: &TestApp,
    tx: &Transmitter,
    org: &Org,
    delivery: Delivery,
) -> SsfStream {
    configure_on(&app.pool, &app.db.url, &app.address, tx, org, delivery).await
}

/// [`configure`] for the database at `url` (through `pool`), the app reached at `address`.
pub async fn configure_on(
    pool: &ual_todo::db::Pool,
    url: &ual_todo::config::DatabaseUrl,
    address: &str,
    tx: &Transmitter,
    org: &Org,
    delivery: Delivery,
) -> SsfStream {
    let public_url = PublicUrl(url::Url::parse(address).unwrap());
    let mut conn = pool.get().await.unwrap();
    let secrets = SecretBox::load(&mut conn, &Settings::for_database(url.clone()))
        .await
        .unwrap()
        .0;
    manage::configure(
        &mut conn,
        &http(),
        &secrets,
        &public_url,
        Setup {
            org,
            transmitter: &tx.issuer,
            delivery,
            bearer: Some(SecretString::from(BEARER)),
        },
    )
    .await
    .expect("the stream is set up")
}

impl Transmitter {
    /// Queues `token` under `jti` for polling again (as after a lost acknowledgement).
    pub async fn requeue(&self, jti: &str, token: &str) {
        let response = self
            .post("/test/queue", &json!({ "jti": jti, "token": token }))
            .await;
        assert!(response.status().is_success());
    }

    /// Waits until `check` holds for the transmitter's state (10 s at most).
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let state = self.state().await;
            if check(&state) {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the transmitter never saw {what}: {}", self.state().await)
    }
}

/// The org's stream once its received-events count (written once a second) reaches `n`.
pub async fn counted(app: &TestApp, org: ual_todo::db::ids::OrgId, n: i64) -> SsfStream {
    for _ in 0..60 {
        let stream = SsfStream::for_org(&mut *app.conn().await, org)
            .await
            .unwrap()
            .unwrap();
        if stream.events_received >= n {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stream never counted {n} events")
}

/// Makes the user known to their org's IdP ([`crate::ssf::IDP`], set as the org's) as `sub`,
/// as an SSO sign-in would; the variables that name them in the IdP-shaped examples.
pub async fn known_at_idp(
    conn: &mut diesel_async::AsyncPgConnection,
    org: ual_todo::db::ids::OrgId,
    user: ual_todo::db::ids::UserId,
    sub: &str,
) -> Value {
    ual_todo::db::models::Org::set_idp(conn, org, Some((crate::ssf::IDP, "acme-app")))
        .await
        .unwrap();
    ual_todo::db::models::User::set_oidc_identity(conn, user, crate::ssf::IDP, sub)
        .await
        .unwrap();
    json!({ "iss": crate::ssf::IDP, "sub": sub })
}
