//! SCIM lookups in a large org: N SCIM-provisioned users in one org, then
//! `GET /scim/v2/Users?filter=userName eq "…"` for random users, one call at a time on a
//! keep-alive connection, each expected to find exactly its user. What an IdP does before every
//! provisioning change.

use std::time::Instant;

use rand::Rng as _;

use crate::{
    fixture::{
        BenchDb, Instance, RawConn, email, progress, scim_request, seed_org, seed_scim, users_sql,
    },
    report::{Latency, Row},
};

/// Lookups before measuring: connections, the pool, plans.
const WARM_UP: usize = 20;

pub async fn run(users: usize, calls: usize) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(users > 0, "at least one user");
    progress!("scim-filter: seeding {users} users in one org");
    let db = BenchDb::create("scim_filter")?;
    let token = {
        let mut conn = db.connect()?;
        seed_org(&mut conn, "https://idp.bench.test")?;
        diesel::connection::SimpleConnection::batch_execute(&mut conn, &users_sql("u", users))?;
        seed_scim(&mut conn)?
    };
    db.settle().await?;
    let app = Instance::start(&db, &[]).await?;
    let mut conn = RawConn::connect(app.addr).await?;

    progress!("scim-filter: {calls} lookups by userName");
    let mut took = Vec::with_capacity(calls);
    for k in 0..WARM_UP + calls {
        let wanted = email("u", rand::rng().random_range(0..users));
        // `userName eq "…"`, percent-encoded.
        let path = format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            wanted.replace('@', "%40")
        );
        let request = scim_request(app.addr, "GET", &path, &token, None);
        let sent = Instant::now();
        let answer = conn.send(&request).await?;
        let elapsed = sent.elapsed();
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        anyhow::ensure!(
            answer.status == 200 && body["totalResults"] == 1,
            "GET {path} answered {}: {body}",
            answer.status
        );
        if k >= WARM_UP {
            took.push(elapsed);
        }
    }
    Ok(vec![
        Row::new(
            "scim-filter",
            format!("userName eq, {users} users in one org"),
        )
        .latency(Latency::of(took))
        .at_most("p99_ms", 5.0),
    ])
}
