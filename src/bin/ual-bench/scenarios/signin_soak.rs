//! Server memory across many password sign-ins: cycles of sign-in + sign-out, four at a time,
//! against one instance; its RSS after a warm-up and after the soak (no stream open). Every
//! sign-in runs argon2 with 19 MiB of memory, which must not pile up in the server.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::connection::SimpleConnection as _;
use futures_util::future::try_join_all;

use crate::{
    fixture::{BenchDb, Instance, email, progress, seed_org, users_sql},
    report::Row,
};

/// Sign-ins running at once (one user each).
const CONCURRENT: usize = 4;
/// Cycles before the first measure: every hashing thread and connection is in use by then.
const WARM_UP: usize = 100;
const PASSWORD: &str = "bench password, long enough";

pub async fn run(cycles: usize) -> anyhow::Result<Vec<Row>> {
    let db = BenchDb::create("signin_soak")?;
    let hash = tokio::task::spawn_blocking(|| ual_todo::auth::password::hash(PASSWORD)).await??;
    {
        let mut conn = db.connect()?;
        seed_org(&mut conn, "https://idp.bench.invalid")?;
        conn.batch_execute(&users_sql("soak", CONCURRENT))
            .context("seeding users")?;
        conn.batch_execute(&format!("UPDATE users SET password_hash = '{hash}';"))
            .context("setting passwords")?;
    }
    let app = Instance::start(&db, &[]).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    soak(&client, &app.base, WARM_UP).await?;
    let warm_kib = settled_rss(&app).await?;
    progress!("signin-soak: {} MiB after warm-up", warm_kib / 1024);
    let started = Instant::now();
    soak(&client, &app.base, cycles).await?;
    let took = started.elapsed().as_secs_f64();
    let soaked_kib = settled_rss(&app).await?;
    progress!(
        "signin-soak: {} MiB after {cycles} cycles ({took:.0}s)",
        soaked_kib / 1024
    );
    Ok(vec![
        Row::new(
            "signin-soak",
            format!("{cycles} sign-in/sign-out cycles, {CONCURRENT} at a time"),
        )
        .figure("rss_after_warm_up_mib", warm_kib as f64 / 1024.0)
        .figure("rss_after_soak_mib", soaked_kib as f64 / 1024.0)
        .figure("cycles_per_s", cycles as f64 / took)
        .at_most("rss_after_soak_mib", 150.0),
    ])
}

/// The server's RSS once in-flight work has settled.
async fn settled_rss(app: &Instance) -> anyhow::Result<u64> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.rss_kib()
}

/// `cycles` cycles, shared out over [`CONCURRENT`] users signing in and out in turn.
async fn soak(client: &reqwest::Client, base: &str, cycles: usize) -> anyhow::Result<()> {
    try_join_all((0..CONCURRENT).map(|user| async move {
        for _ in (user..cycles).step_by(CONCURRENT) {
            cycle(client, base, &email("soak", user)).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(())
}

/// Signs in with the password, then signs out with the session cookie it got.
async fn cycle(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<()> {
    let signed_in = client
        .post(format!("{base}/login"))
        .header("Origin", base)
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status() == 303,
        "sign-in answered {}",
        signed_in.status()
    );
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|c| c.starts_with("ual_todo="))
        .context("no session cookie")?
        .to_owned();
    let signed_out = client
        .post(format!("{base}/logout"))
        .header("Origin", base)
        .header("Cookie", cookie)
        .send()
        .await?;
    anyhow::ensure!(
        signed_out.status() == 303,
        "sign-out answered {}",
        signed_out.status()
    );
    Ok(())
}
