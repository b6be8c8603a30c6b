//! Settings, read once in `main` from flags and environment variables. Every field has a default
//! that works on a developer machine with a local PostgreSQL, so `cargo run` needs no setup.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The default database: the local PostgreSQL, reached over TCP with trust authentication.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/ual_todo";

/// Everything an instance needs to run, shared by every CLI command.
#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: DatabaseUrl,

    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// The URL users and identity providers reach this app at (defaults to http://BIND).
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<Url>,

    /// Hex-encoded 64-byte key that signs cookies; by default generated once and kept in the database.
    #[arg(long, env = "COOKIE_KEY", hide_env_values = true, global = true)]
    pub cookie_key: Option<CookieKey>,

    /// Hex-encoded 32-byte key that encrypts IdP client secrets; without it, a key kept in the
    /// database is used (a database dump alone then reveals the secrets).
    #[arg(long, env = "SECRETS_KEY", hide_env_values = true, global = true)]
    pub secrets_key: Option<SecretsKey>,

    /// A session ends after this long without a request (e.g. 30m, 12h, 7d).
    #[arg(long, env = "SESSION_IDLE_TIMEOUT", default_value = "12h", value_parser = parse_duration, global = true)]
    pub session_idle_timeout: Duration,

    /// A session ends this long after sign-in, however active it is.
    #[arg(long, env = "SESSION_LIFETIME", default_value = "7d", value_parser = parse_duration, global = true)]
    pub session_lifetime: Duration,

    /// A deleted user's todos are kept this long, then purged with the account.
    #[arg(long, env = "DELETED_USER_RETENTION", default_value = "30d", value_parser = parse_duration, global = true)]
    pub deleted_user_retention: Duration,

    /// Pooled database connections per instance for requests and background work; session
    /// reads get as many again, split among the workers (each drives its own).
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 8, global = true)]
    pub database_pool_size: usize,

    /// On SIGTERM, how long the instance keeps serving while `/healthz` answers 503 and every
    /// response closes its connection, before it stops (see `deploy/nginx/`).
    #[arg(long, env = "SHUTDOWN_DRAIN", default_value = "5s", value_parser = parse_duration, global = true)]
    pub shutdown_drain: Duration,

    /// Database connections per instance reserved for revocations (Universal Logout,
    /// back-channel logout, SCIM writes, Shared Signals): page views cannot take them.
    #[arg(long, env = "REVOCATION_POOL_SIZE", default_value_t = 4, global = true)]
    pub revocation_pool_size: usize,

    /// Page requests handled at once per instance; more wait their turn, so that revocations
    /// are not queued behind them on the workers.
    #[arg(long, env = "PAGE_CONCURRENCY", default_value_t = 16, global = true)]
    pub page_concurrency: usize,

    /// The longest, in milliseconds, a page request or page read waits while an authenticated
    /// revocation is being written on the instance, so that the CPU and the database go to the
    /// revocation first (0: pages never wait).
    #[arg(long, env = "PAGE_HOLD_MS", default_value_t = 5, global = true)]
    pub page_hold_ms: u64,

    /// The CPU time slice, in microseconds, the kernel gives the request workers and the
    /// revocation lane before another woken task may run (Linux 6.12 and later; 0 leaves the
    /// kernel's default, 1.4 ms on a 2-core machine). A short one lets a revocation's database
    /// backend run soon after it is woken although the workers are busy with pages.
    #[arg(long, env = "TIME_SLICE_US", default_value_t = 100, global = true)]
    pub time_slice_us: u64,

    /// Least time between two re-fetches of an IdP's signing keys on an unknown key id.
    #[arg(long, env = "JWKS_MIN_REFETCH", default_value = "60s", value_parser = parse_duration, global = true)]
    pub jwks_min_refetch: Duration,

    /// How often live-logout streams send a keep-alive comment (proxies close idle streams; a
    /// closed client is noticed at the next write).
    #[arg(long, env = "SSE_KEEP_ALIVE", default_value = "15s", value_parser = parse_duration, global = true)]
    pub sse_keep_alive: Duration,

    /// Take the client's address from the first `X-Forwarded-For` hop (for the rate limits and
    /// the addresses sessions record): only behind a proxy that sets it. Nothing else is read
    /// from proxy headers.
    #[arg(long, env = "TRUST_PROXY_HEADERS", global = true)]
    pub trust_proxy_headers: bool,

    /// Let identity providers be reached over plain http on loopback (http://127.0.0.1,
    /// http://localhost) and at loopback addresses: for tests and local development only.
    /// Private and link-local addresses stay refused.
    #[arg(long, env = "ALLOW_INSECURE_IDP", global = true)]
    pub allow_insecure_idp: bool,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "WORKERS", global = true)]
    pub workers: Option<usize>,
}

impl Settings {
    /// Settings for tests and tools on `database_url`: the defaults, but with one worker (the
    /// server's default is one per core).
    pub fn for_database(database_url: DatabaseUrl) -> Self {
        Self {
            database_url,
            bind: "127.0.0.1:0".parse().expect("a valid socket address"),
            public_url: None,
            cookie_key: None,
            secrets_key: None,
            session_idle_timeout: Duration::from_secs(12 * 3600),
            session_lifetime: Duration::from_secs(7 * 24 * 3600),
            deleted_user_retention: Duration::from_secs(30 * 24 * 3600),
            database_pool_size: 8,
            revocation_pool_size: 2,
            shutdown_drain: Duration::ZERO,
            page_concurrency: 16,
            time_slice_us: 100,
            page_hold_ms: 5,
            jwks_min_refetch: Duration::from_secs(60),
            sse_keep_alive: Duration::from_secs(15),
            trust_proxy_headers: false,
            allow_insecure_idp: false,
            workers: Some(1),
        }
    }
}

/// A PostgreSQL URL whose password never reaches a log line (`Display` and `Debug` hide it).
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// The full URL, password included: for the database driver only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The database's name (the URL's path).
    pub fn database_name(&self) -> String {
        self.parsed().path().trim_start_matches('/').to_owned()
    }

    /// The same server with another database, e.g. `postgres` for maintenance.
    pub fn with_database(&self, name: &str) -> Self {
        let mut url = self.parsed();
        url.set_path(name);
        Self(SecretString::from(url.to_string()))
    }

    /// The same URL with a server setting for every connection made with it (libpq's
    /// `options=-c name=value`, after any options the URL already has). `name` and `value` are
    /// plain words (letters, digits, `_`), so they need no escaping.
    pub fn with_server_setting(&self, name: &str, value: &str) -> Self {
        let plain = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        assert!(
            plain(name) && plain(value),
            "a server setting is plain words"
        );
        let mut url = self.parsed();
        // Kept as written: the driver reads `%20` but not `+` as a space, so the query is not
        // re-encoded.
        let setting = format!("-c%20{name}%3D{value}");
        let mut parts: Vec<String> = url
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect();
        match parts.iter_mut().find(|part| part.starts_with("options=")) {
            Some(options) => *options = format!("{options}%20{setting}"),
            None => parts.push(format!("options={setting}")),
        }
        url.set_query(Some(&parts.join("&")));
        Self(SecretString::from(url.to_string()))
    }

    fn parsed(&self) -> Url {
        Url::parse(self.expose()).expect("checked when the DatabaseUrl was built")
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err("the scheme must be postgres:// or postgresql://".into());
        }
        if url.path().trim_start_matches('/').is_empty() {
            return Err("the URL must name a database, e.g. postgres://127.0.0.1/ual_todo".into());
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.parsed();
        if url.password().is_some() {
            let _ = url.set_password(Some("********"));
        }
        write!(f, "{url}")
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The cookie-signing key given by the operator; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct CookieKey(pub SecretString);

impl FromStr for CookieKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match hex::decode(s) {
            Ok(bytes) if bytes.len() >= 64 => Ok(Self(SecretString::from(s.to_owned()))),
            _ => Err("COOKIE_KEY must be at least 64 bytes, hex-encoded (128 hex digits)".into()),
        }
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey([redacted])")
    }
}

/// The key that encrypts IdP client secrets; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct SecretsKey(pub SecretString);

impl FromStr for SecretsKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match hex::decode(s) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self(SecretString::from(s.to_owned()))),
            _ => Err("SECRETS_KEY must be 32 bytes, hex-encoded (64 hex digits)".into()),
        }
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey([redacted])")
    }
}

/// Parses `90`, `90s`, `30m`, `12h` or `7d` into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 90s, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` has an unknown unit (use s, m, h or d)")),
    };
    match n.checked_mul(seconds) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("`{s}` must be a positive duration")),
    }
}

/// The URL the app is reached at, as users and identity providers see it.
#[derive(Clone, Debug)]
pub struct PublicUrl(pub Url);

impl PublicUrl {
    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// An absolute URL for `path` on this app.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0.as_str().trim_end_matches('/'), path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_setting_joins_the_urls_own_options_and_keeps_its_other_parameters() {
        let url: DatabaseUrl = "postgres://u:p@db:5432/app?sslmode=disable&options=-c%20a%3Db"
            .parse()
            .unwrap();
        let bare: DatabaseUrl = "postgres://db/app".parse().unwrap();

        assert_eq!(
            url.with_server_setting("plan_cache_mode", "force_generic_plan")
                .expose(),
            "postgres://u:p@db:5432/app?sslmode=disable\
             &options=-c%20a%3Db%20-c%20plan_cache_mode%3Dforce_generic_plan"
        );
        assert_eq!(
            bare.with_server_setting("work_mem", "8MB").expose(),
            "postgres://db/app?options=-c%20work_mem%3D8MB"
        );
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn database_url_hides_its_password() {
        let url: DatabaseUrl = "postgres://app:hunter2@db.example:5432/todo"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://app:********@db.example:5432/todo"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.database_name(), "todo");
        assert_eq!(url.with_database("postgres").database_name(), "postgres");
    }

    #[test]
    fn database_url_must_be_postgres_with_a_database() {
        assert!("mysql://localhost/x".parse::<DatabaseUrl>().is_err());
        assert!("postgres://localhost".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn cookie_key_needs_64_bytes_and_is_redacted() {
        assert!("abcd".parse::<CookieKey>().is_err());
        let key: CookieKey = "ab".repeat(64).parse().unwrap();
        assert_eq!(format!("{key:?}"), "CookieKey([redacted])");
    }
}
