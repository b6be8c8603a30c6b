//! The `sessions` table at scale: what its heap and each index take on disk at N rows, and what
//! the sweeper's statement (`DELETE … WHERE id IN (SELECT id … WHERE expires_at <= now LIMIT
//! 1000)`, every five minutes on every instance) costs when nothing has expired (the usual pass)
//! and when a share of the rows has (a day's expiries).

use std::time::Instant;

use diesel::{
    QueryableByName, RunQueryDsl as _, connection::SimpleConnection as _, sql_types::Text,
};

use crate::{
    fixture::{BenchDb, progress, query_text, seed_org, users_sql, wal_bytes, wal_lsn},
    report::{Latency, Row},
};

/// The sweeper's statement, as `SessionRecord::delete_expired` runs it.
const SWEEP: &str = "DELETE FROM sessions WHERE id IN \
                     (SELECT id FROM sessions WHERE expires_at <= now() LIMIT 1000)";
/// Sessions per user, as the seeding of `ual-big --tenfold` has it.
const SESSIONS_PER_USER: usize = 10;
/// Sweeper passes timed when nothing has expired.
const EMPTY_PASSES: usize = 200;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// One row: sizes at `rows` rows, then a sweep of `expired_pct` percent of them.
pub async fn run(rows: usize, expired_pct: f64) -> anyhow::Result<Row> {
    let users = rows / SESSIONS_PER_USER;
    progress!("sessions-table {rows}: seeding {users} users with {SESSIONS_PER_USER} sessions");
    let db = BenchDb::create("sessions_table")?;
    seed_org(&mut db.connect()?, "https://idp.bench.test")?;
    db.execute(users_sql("t", users)).await?;
    let seeding = Instant::now();
    db.seed_sessions(|_| SESSIONS_PER_USER).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    progress!("sessions-table {rows}: seeded in {seed_seconds:.0}s; vacuuming");
    let mut conn = db.connect()?;
    conn.batch_execute("VACUUM ANALYZE sessions")?;

    let mut row = Row::new(
        "sessions-table",
        format!("{rows} sessions, sweep of {expired_pct}% expired"),
    );
    let mb = |bytes: &str| bytes.parse::<f64>().map(|b| b / 1_048_576.0);
    let heap = query_text(&mut conn, "SELECT pg_table_size('sessions')::text AS v")?;
    row = row.figure("table_mb", mb(&heap)?);
    let indexes = query_text(
        &mut conn,
        "SELECT string_agg(indexrelname || '=' || pg_relation_size(indexrelid), ',') AS v
           FROM pg_stat_user_indexes WHERE relname = 'sessions'",
    )?;
    for entry in indexes.split(',') {
        let (name, bytes) = entry.split_once('=').unwrap_or((entry, "0"));
        row = row.figure(&format!("{name}_mb"), mb(bytes)?);
    }

    progress!("sessions-table {rows}: {EMPTY_PASSES} sweeper passes with nothing expired");
    let mut empty = Vec::new();
    for _ in 0..EMPTY_PASSES {
        let started = Instant::now();
        diesel::sql_query(SWEEP).execute(&mut conn)?;
        empty.push(started.elapsed());
    }
    let empty = Latency::of(empty);

    progress!("sessions-table {rows}: expiring {expired_pct}% of the rows, then one sweep");
    conn.batch_execute(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 minute'
          WHERE random() < {}",
        expired_pct / 100.0
    ))?;
    // One statement each: VACUUM cannot run in the implicit transaction of a batch.
    conn.batch_execute("VACUUM ANALYZE sessions")?;
    conn.batch_execute("CHECKPOINT")?;
    // The plan of one batch, rolled back: the sweep below deletes every expired row.
    conn.batch_execute("BEGIN")?;
    let plan: Vec<PlanLine> =
        diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {SWEEP}")).load(&mut conn)?;
    conn.batch_execute("ROLLBACK")?;
    for line in &plan {
        progress!("  {}", line.line);
    }
    let lsn = wal_lsn(&mut conn)?;
    let (mut batches, mut deleted, started) = (Vec::new(), 0usize, Instant::now());
    loop {
        let batch_started = Instant::now();
        let n = diesel::sql_query(SWEEP).execute(&mut conn)?;
        batches.push(batch_started.elapsed());
        deleted += n;
        if n < 1000 {
            break;
        }
    }
    let sweep_seconds = started.elapsed().as_secs_f64();
    let lsn_after = wal_lsn(&mut conn)?;
    let wal = wal_bytes(&mut conn, &lsn, &lsn_after)?;
    let batches = Latency::of(batches);
    progress!(
        "sessions-table {rows}: swept {deleted} rows in {sweep_seconds:.1}s (batch p50 {:.1} ms)",
        batches.p50_ms
    );
    Ok(row
        .latency(empty)
        .figure("swept_rows", deleted as f64)
        .figure("sweep_s", sweep_seconds)
        .figure("sweep_batch_p50_ms", batches.p50_ms)
        .figure("sweep_batch_p99_ms", batches.p99_ms)
        .figure(
            "sweep_us_per_row",
            sweep_seconds * 1e6 / deleted.max(1) as f64,
        )
        .figure("sweep_wal_bytes_per_row", wal / deleted.max(1) as f64)
        .figure("seed_s", seed_seconds))
}
