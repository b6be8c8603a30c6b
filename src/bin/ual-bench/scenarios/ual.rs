//! Latency of single Universal Logout calls: each call signs out a different user who has five
//! sessions, authenticated by an org API key or by a JWT (keys already cached).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;

use crate::{
    fixture::{BenchDb, CLIENT_ID, Idp, Instance, email, seed_org, seed_sessions, users_sql},
    report::{Latency, Row},
};

pub async fn run(calls: usize) -> anyhow::Result<Vec<Row>> {
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
    Ok(vec![
        Row::new("ual", "one call, org API key").latency(Latency::of(by_key)),
        Row::new("ual", "one call, JWT (warm JWKS)").latency(Latency::of(by_jwt)),
    ])
}

/// Signs out user `i` and returns how long the 204 took.
async fn call(
    client: &reqwest::Client,
    url: &str,
    credential: &str,
    i: usize,
) -> anyhow::Result<Duration> {
    let body = format!(
        r#"{{"sub_id":{{"format":"email","email":"{}"}}}}"#,
        email("user", i)
    );
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
    let mut conn = db.connect()?;
    let api_key = seed_org(&mut conn, &idp.issuer)?;
    conn.batch_execute(&users_sql("user", users))
        .context("seeding users")?;
    seed_sessions(&mut conn, |_| 5)?;
    Ok(api_key)
}
