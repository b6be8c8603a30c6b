//! Latency of single Universal Logout calls: each call signs out a different user who has five
//! sessions, authenticated by an org API key or by a JWT (keys already cached).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;

use crate::{
    fixture::{BenchDb, Idp, Instance},
    report::{self, Latency, Row},
};

const CLIENT_ID: &str = "bench-client";

pub async fn run(calls: usize) -> anyhow::Result<()> {
    let db = BenchDb::create("ual")?;
    let idp = Idp::start().await?;
    let api_key = seed(&db, &idp, calls * 2 + 1)?;
    let app = Instance::start(&db, &[]).await?;
    let url = format!("{}/global-token-revocation", app.base);
    let client = reqwest::Client::new();

    // Warm up: connections, the JWKS cache.
    call(&client, &url, &api_key, 0).await?;
    call(&client, &url, &idp.jwt(CLIENT_ID, &url), 0).await?;

    let mut by_key = Vec::with_capacity(calls);
    for i in 1..=calls {
        by_key.push(call(&client, &url, &api_key, i).await?);
    }
    let mut by_jwt = Vec::with_capacity(calls);
    for i in calls + 1..=calls * 2 {
        let jwt = idp.jwt(CLIENT_ID, &url);
        by_jwt.push(call(&client, &url, &jwt, i).await?);
    }
    let rows = [
        Row {
            scenario: "ual".into(),
            case: "one call, org API key".into(),
            latency: Some(Latency::of(by_key)),
            figures: vec![],
        },
        Row {
            scenario: "ual".into(),
            case: "one call, JWT (warm JWKS)".into(),
            latency: Some(Latency::of(by_jwt)),
            figures: vec![],
        },
    ];
    report::publish("ual", &rows)
}

/// Signs out user `i` and returns how long the 204 took.
async fn call(
    client: &reqwest::Client,
    url: &str,
    credential: &str,
    i: usize,
) -> anyhow::Result<Duration> {
    let body = format!(r#"{{"sub_id":{{"format":"email","email":"user{i}@bench.test"}}}}"#);
    let started = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(credential)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    let took = started.elapsed();
    anyhow::ensure!(
        response.status() == 204,
        "UAL answered {}",
        response.status()
    );
    Ok(took)
}

/// One org trusting `idp`, `users` users with five sessions each; returns the org's API key.
fn seed(db: &BenchDb, idp: &Idp, users: usize) -> anyhow::Result<String> {
    let issued = ual_todo::secret_token::issue(ual_todo::secret_token::Kind::OrgApiKey);
    let mut conn = db.connect()?;
    conn.batch_execute(&format!(
        "INSERT INTO orgs (id, name, slug, idp_issuer, idp_client_id)
           VALUES ('00000000-0000-0000-0000-000000000001', 'Bench', 'bench', '{issuer}', '{CLIENT_ID}');
         INSERT INTO org_api_keys (org_id, prefix, key_hash)
           VALUES ('00000000-0000-0000-0000-000000000001', '{prefix}', '\\x{hash}');
         INSERT INTO users (org_id, email)
           SELECT '00000000-0000-0000-0000-000000000001', 'user' || i || '@bench.test'
           FROM generate_series(0, {last}) AS i;
         INSERT INTO sessions (id, user_id, org_id, state, expires_at)
           SELECT sha256(u.id::text::bytea || s::text::bytea), u.id, u.org_id, '{{}}', now() + interval '1 day'
           FROM users u, generate_series(1, 5) AS s;",
        issuer = idp.issuer,
        prefix = issued.prefix,
        hash = hex::encode(issued.hash),
        last = users - 1,
    ))
    .context("seeding")?;
    Ok(ual_todo::secret_token::reveal(&issued).to_owned())
}
