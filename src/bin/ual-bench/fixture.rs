//! What every scenario needs: a fresh database, app processes, a signing IdP.

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use diesel::{Connection as _, PgConnection, connection::SimpleConnection as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk, jwk::JwkSet};
use tokio::process::{Child, Command};
use ual_todo::{
    config::{DEFAULT_DATABASE_URL, DatabaseUrl},
    db,
};

/// A database of the benchmark's own, dropped at the end.
pub struct BenchDb {
    pub url: DatabaseUrl,
    name: String,
}

impl BenchDb {
    /// Creates and migrates `ual_bench_<scenario>_<random>`.
    pub fn create(scenario: &str) -> anyhow::Result<Self> {
        let server: DatabaseUrl = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let name = format!(
            "ual_bench_{scenario}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let url = server.with_database(&name);
        db::prepare(&url)?;
        Ok(Self { url, name })
    }

    /// A blocking connection for bulk seeding.
    pub fn connect(&self) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::establish(self.url.expose())?)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let admin = self.url.with_database("postgres");
        if let Ok(mut conn) = PgConnection::establish(admin.expose()) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                db::quote_ident(&self.name)
            ));
        }
    }
}

/// An app instance running as a separate process.
pub struct Instance {
    pub base: String,
    /// Killed when the instance is dropped.
    _process: Child,
}

impl Instance {
    /// Starts `ual-bench serve` on a free port and waits until `/healthz` answers.
    pub async fn start(db: &BenchDb, extra_env: &[(&str, &str)]) -> anyhow::Result<Instance> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("serve")
            .env("DATABASE_URL", db.url.expose())
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("PUBLIC_URL", &base)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().context("cannot start the app")?;
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(Instance {
                    base,
                    _process: child,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the app did not become healthy at {base}")
    }
}

const RSA_KEY: &[u8] = include_bytes!("../../../tests/fixtures/keys/rsa.pem");

/// An identity provider that publishes a JWKS over HTTP and signs Universal Logout JWTs.
pub struct Idp {
    pub issuer: String,
    key: EncodingKey,
}

impl Idp {
    pub async fn start() -> anyhow::Result<Idp> {
        let key = EncodingKey::from_rsa_pem(RSA_KEY)?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
        jwk.common.key_id = Some("bench".into());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let published = Arc::new(Mutex::new((issuer.clone(), JwkSet { keys: vec![jwk] })));
        let data = web::Data::from(published);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(|d: web::Data<Mutex<(String, JwkSet)>>| async move {
                        let issuer = d.lock().unwrap().0.clone();
                        HttpResponse::Ok().json(serde_json::json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") }))
                    }),
                )
                .route(
                    "/jwks",
                    web::get().to(|d: web::Data<Mutex<(String, JwkSet)>>| async move {
                        HttpResponse::Ok().json(d.lock().unwrap().1.clone())
                    }),
                )
        })
        .workers(1)
        .listen(listener)?
        .run();
        tokio::spawn(server);
        Ok(Idp { issuer, key })
    }

    /// A fresh Universal Logout JWT for an app whose client id is `client_id`.
    pub fn jwt(&self, client_id: &str, audience: &str) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("bench".into());
        header.typ = Some("global-token-revocation+jwt".into());
        let claims = serde_json::json!({
            "iss": self.issuer, "sub": client_id, "aud": audience,
            "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing with a valid key")
    }
}
