//! Test harness: databases cloned from a migrated template, an app per test, and clients that
//! keep cookies and do not follow redirects.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use diesel::{Connection as _, PgConnection, RunQueryDsl as _, connection::SimpleConnection as _};
use reqwest::{StatusCode, cookie::CookieStore as _, header::LOCATION};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ual_todo::{
    config::{DEFAULT_DATABASE_URL, DatabaseUrl, Settings},
    db::{
        self, Pool, PooledConnection,
        ids::{ManagedBy, OrgId, SessionId},
        models::{NewOrg, NewUser, Org, User},
    },
    session_store::{SessionMeta, SessionRow},
    startup::Application,
};

/// The server tests run against; `TEST_DATABASE_URL` may point elsewhere.
fn server_url() -> DatabaseUrl {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
        .parse()
        .expect("TEST_DATABASE_URL is a postgres URL")
}

/// A hash of the migrations, so a changed migration gets a fresh template.
fn migrations_fingerprint() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<_> = walk(std::path::Path::new(dir));
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).expect("a readable migration"));
    }
    hex::encode(&hasher.finalize()[..6])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("the migrations directory")
        .flat_map(|entry| {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

fn admin_connection() -> PgConnection {
    PgConnection::establish(server_url().with_database("postgres").expose())
        .expect("PostgreSQL is running (scripts/test starts it)")
}

/// The migrated template, built once per fingerprint. Built under another name and renamed, so a
/// crash mid-build never leaves a half-migrated template behind; an advisory lock keeps
/// concurrent test processes from building it twice.
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("ual_todo_tmpl_{}", migrations_fingerprint());
        let mut admin = admin_connection();
        admin
            .batch_execute("SELECT pg_advisory_lock(7412)")
            .unwrap();
        if !database_exists(&mut admin, &name) {
            let building = format!("{name}_building");
            admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    db::quote_ident(&building)
                ))
                .unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {}", db::quote_ident(&building)))
                .unwrap();
            {
                let mut conn =
                    PgConnection::establish(server_url().with_database(&building).expose())
                        .unwrap();
                db::migrate(&mut conn).expect("migrations apply to an empty database");
            }
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    db::quote_ident(&building),
                    db::quote_ident(&name)
                ))
                .unwrap();
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(7412)")
            .unwrap();
        name
    })
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        one: i32,
    }
    diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .load::<Found>(conn)
        .map(|rows| !rows.is_empty())
        .unwrap_or(false)
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub url: DatabaseUrl,
    name: String,
}

impl TestDb {
    /// A fresh, migrated database.
    pub fn new() -> Self {
        let template = template();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        admin_connection()
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {} STRATEGY = FILE_COPY",
                db::quote_ident(&name),
                db::quote_ident(template)
            ))
            .expect("cloning the template database");
        Self {
            url: server_url().with_database(&name),
            name,
        }
    }

    /// A name for a database that does not exist yet (dropped at the end all the same).
    pub fn unborn() -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        Self {
            url: server_url().with_database(&name),
            name,
        }
    }

    /// A blocking connection, for assertions that read the database directly.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(self.url.expose()).expect("connecting to the test database")
    }

    pub fn exists(&self) -> bool {
        database_exists(&mut admin_connection(), &self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let statement = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            db::quote_ident(&self.name)
        );
        // Off the async runtime the test may be running on.
        let _ = std::thread::spawn(move || admin_connection().batch_execute(&statement)).join();
    }
}

/// An app running on a free port, with its own database.
pub struct TestApp {
    pub address: String,
    pub pool: Pool,
    pub hub: Arc<ual_todo::live::Hub>,
    pub db: TestDb,
}

/// With `TEST_LOG=1`, the app's logs (`RUST_LOG` filter, `info` by default) are shown for the
/// tests that fail, zero-to-production's convention.
fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// Starts the app on a fresh database with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app after `configure` has adjusted its settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_logs();
    let db = TestDb::new();
    let mut settings = Settings::for_database(db.url.clone());
    // The tests' identity providers run on loopback over plain http.
    settings.allow_insecure_idp = true;
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let hub = app.hub();
    tokio::spawn(app.run_until_stopped());
    let pool = db::pool(&db.url, 4).unwrap();
    TestApp {
        address,
        pool,
        hub,
        db,
    }
}

/// A user the tests can sign in as.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub user: User,
    pub password: String,
}

impl TestApp {
    pub async fn conn(&self) -> PooledConnection {
        self.pool.get().await.expect("a database connection")
    }

    /// Writes a signed-in session of `user` for the cookie key `key`, ending in an hour, as
    /// sign-in leaves it; returns what sign-in records about it.
    pub fn insert_session(&self, user: &TestUser, key: &str) -> SessionMeta {
        let meta = SessionMeta {
            id: SessionId::new(),
            org_id: user.user.org_id,
            email: user.user.email.clone(),
            is_admin: user.user.is_admin,
            user_agent: None,
            ip: None,
            oidc_sid: None,
            idp: None,
        };
        let now = time::OffsetDateTime::now_utc();
        let end = now + time::Duration::hours(1);
        let row = SessionRow::signed_in(key, user.user.id, &meta, now, end);
        diesel::insert_into(ual_todo::db::schema::sessions::table)
            .values(row.to_insert())
            .execute(&mut self.db.connect())
            .unwrap();
        meta
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_org(&self, slug: &str) -> Org {
        Org::create(&mut *self.conn().await, &NewOrg { name: slug, slug })
            .await
            .unwrap()
    }

    /// A new Universal Logout API key of `org`, as an IdP presents it.
    pub async fn api_key(&self, org: OrgId) -> String {
        let issued = ual_todo::db::models::OrgApiKey::create(&mut *self.conn().await, org)
            .await
            .unwrap()
            .1;
        ual_todo::secret_token::reveal(&issued).to_owned()
    }

    pub async fn create_user(&self, org: OrgId, email: &str, admin: bool) -> TestUser {
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let hash = ual_todo::auth::password::hash(&password).unwrap();
        let user = User::create(
            &mut *self.conn().await,
            &NewUser {
                org_id: org,
                email,
                password_hash: Some(&hash),
                is_admin: admin,
                managed_by: ManagedBy::Local,
            },
        )
        .await
        .unwrap();
        TestUser { user, password }
    }

    /// An org `acme` with one user, `alice@acme.test`.
    pub async fn alice(&self) -> TestUser {
        let org = self.create_org("acme").await;
        self.create_user(org.id, "alice@acme.test", false).await
    }

    /// A new browser: its own cookies, no redirects followed.
    pub fn browser(&self) -> Browser {
        self.browser_with(reqwest::header::HeaderMap::new())
    }

    /// A new browser behind a proxy that reports it as `ip` (`X-Forwarded-For`).
    pub fn browser_from(&self, ip: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", ip.parse().unwrap());
        self.browser_with(headers)
    }

    fn browser_with(&self, headers: reqwest::header::HeaderMap) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            base: self.address.clone(),
        }
    }

    /// A browser signed in as `user`.
    pub async fn signed_in(&self, user: &TestUser) -> Browser {
        let browser = self.browser();
        let response = browser.login(&user.user.email, &user.password).await;
        assert_is_redirect_to(&response, "/todos");
        browser
    }

    /// Sends this app the Universal Logout request an IdP sends: `credential` (an API key or a
    /// JWT) as the bearer token, `subject` as the JSON body.
    pub async fn universal_logout(&self, credential: &str, subject: &Value) -> reqwest::Response {
        universal_logout_at(&self.address, credential, subject).await
    }
}

/// The path of the Universal Logout endpoint (and of a UAL JWT's `aud`, after the address).
pub const UNIVERSAL_LOGOUT: &str = "/global-token-revocation";

/// A Universal Logout subject naming a user by email, the format every IdP sends.
pub fn email_subject(address: &str) -> Value {
    json!({ "sub_id": { "format": "email", "email": address } })
}

/// The Universal Logout request for the app at `base`, built but not sent, for a test that adds
/// to it (a proxy header) or sends many with one client.
pub fn universal_logout_request(
    client: &reqwest::Client,
    base: &str,
    credential: &str,
    subject: &Value,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}{UNIVERSAL_LOGOUT}"))
        .bearer_auth(credential)
        .json(subject)
}

/// Sends the Universal Logout request to the app at `base`: for an app run as a process.
pub async fn universal_logout_at(
    base: &str,
    credential: &str,
    subject: &Value,
) -> reqwest::Response {
    universal_logout_request(&reqwest::Client::new(), base, credential, subject)
        .send()
        .await
        .unwrap()
}

/// A cookie-keeping HTTP client, like a browser tab.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub base: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap()
    }

    /// Submits a form from one of the app's own pages (same origin, as a browser marks it).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{}", self.base, path))
            .header("Origin", &self.base)
            .header("Sec-Fetch-Site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    /// Whether this browser's session still opens the todo list (signed out, it is sent to sign in).
    pub async fn is_signed_in(&self) -> bool {
        self.get("/todos").await.status() == StatusCode::OK
    }

    /// Asserts this browser's session is over: the todo list sends it to sign in, on the
    /// sign-in page or, for a browser that last signed in through SSO, at its IdP again.
    pub async fn assert_signed_out(&self) {
        let response = self.get("/todos").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "sent to sign in");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location == "/login" || location.starts_with("/auth/oidc/initiate?iss="),
            "sent to sign in, not to {location}"
        );
    }

    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    /// The `Cookie` header this browser sends.
    pub fn cookie_header(&self) -> Option<String> {
        let url = self.base.parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// A second browser holding a copy of this one's cookies (a stolen cookie, another tab).
    pub fn clone_cookies(&self) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let url: reqwest::Url = self.base.parse().unwrap();
        if let Some(header) = self.cookie_header() {
            for pair in header.split("; ") {
                jar.add_cookie_str(pair, &url);
            }
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            base: self.base.clone(),
        }
    }
}

pub fn assert_is_redirect_to(response: &reqwest::Response, location: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location}"
    );
    assert_eq!(response.headers().get(LOCATION).unwrap(), location);
}

/// Asserts `response` is the JSON error every API answers with: `status`, the machine-readable
/// `error` code and an `error_description` that mentions `words`. Returns the description.
pub async fn assert_json_error(
    response: reqwest::Response,
    status: StatusCode,
    error: &str,
    words: &str,
) -> String {
    assert_eq!(
        response.status(),
        status,
        "expected {status} {error} ({words})"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("an error_description in {body}"))
        .to_owned();
    assert!(
        description.contains(words),
        "{description:?} should mention {words:?}"
    );
    description
}

/// Counts rows matching an SQL condition (`table WHERE …`) in the test's database.
pub fn count(db: &TestDb, from_where: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT count(*) AS n FROM {from_where}"))
        .get_result::<Count>(&mut db.connect())
        .unwrap()
        .n
}

/// A Server-Sent Events stream read the way `EventSource` would.
pub struct EventStream {
    body: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Send>,
    >,
    buffer: String,
}

/// One event: its name and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub name: String,
    pub data: String,
}

impl EventStream {
    /// Opens `path` with the browser's cookies; the response is returned when it is not a stream.
    pub async fn open(browser: &Browser, path: &str) -> Result<EventStream, reqwest::Response> {
        let response = browser
            .client
            .get(format!("{}{}", browser.base, path))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let is_stream = response.status() == StatusCode::OK
            && response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream");
        if !is_stream {
            return Err(response);
        }
        Ok(EventStream {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        })
    }

    /// The next event within `within` (keep-alive comments skipped); `None` on timeout or end.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        use futures_util::StreamExt as _;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    name: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event.name = name.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data.push_str(data);
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Whether the server closed the stream within `within` (after any remaining events).
    pub async fn closes(&mut self, within: Duration) -> bool {
        use futures_util::StreamExt as _;
        matches!(
            tokio::time::timeout(within, async {
                while let Some(Ok(_)) = self.body.next().await {}
            })
            .await,
            Ok(())
        )
    }
}

/// Runs the `ual-todo` binary on `db` with `args`, `stdin` as its input and `RUST_LOG` set to
/// `log_filter`; its output once it exits. Like the test apps it may name plain-http loopback
/// IdPs (`ALLOW_INSECURE_IDP`).
pub fn run_cli(
    db: &TestDb,
    args: &[&str],
    stdin: Option<&str>,
    log_filter: &str,
) -> std::process::Output {
    cli_process(db, args, stdin, log_filter, true)
}

/// Runs the binary as an operator would, without `ALLOW_INSECURE_IDP`.
pub fn run_cli_strict(db: &TestDb, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    cli_process(db, args, stdin, "warn", false)
}

fn cli_process(
    db: &TestDb,
    args: &[&str],
    stdin: Option<&str>,
    log_filter: &str,
    allow_insecure_idp: bool,
) -> std::process::Output {
    use std::{
        io::Write as _,
        process::{Command, Stdio},
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_ual-todo"))
        .args(args)
        .env("DATABASE_URL", db.url.expose())
        .env("RUST_LOG", log_filter)
        .env("ALLOW_INSECURE_IDP", allow_insecure_idp.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// Starts the `ual-todo` binary as a server on `db` and returns it with its address.
pub fn serve(db: &TestDb) -> (std::process::Child, String) {
    use std::{
        io::{BufRead as _, BufReader},
        process::{Command, Stdio},
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_ual-todo"))
        .env("DATABASE_URL", db.url.expose())
        .env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server logs where it serves")
            .unwrap();
        if let Some(at) = line.split("serving at ").nth(1) {
            break at.trim().trim_end_matches('/').to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {}); // keep draining its log
    (child, address)
}

/// Ends the app's `LISTEN` connection from the database side, as a network failure would.
pub fn cut_the_listener(conn: &mut PgConnection) {
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{}' \
         AND datname = current_database()",
        ual_todo::live::LISTENER_NAME
    ))
    .execute(conn)
    .unwrap();
}
