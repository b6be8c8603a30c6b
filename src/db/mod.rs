//! The database: connection pool, creation of a missing database, embedded migrations, models.

pub mod ids;
pub mod models;
pub mod pipelined;
pub mod prepared;
pub mod schema;

use std::time::Duration;

use anyhow::Context;
use diesel::{Connection, PgConnection, RunQueryDsl, connection::SimpleConnection};
use diesel_async::{
    AsyncPgConnection,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

/// Every migration under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The shared pool of async connections.
pub type Pool = diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>;

/// A connection checked out of the [`Pool`].
pub type PooledConnection =
    deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// An arbitrary key for `pg_advisory_lock`, so instances starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x5541_4c5f_746f_646f; // "UAL_todo"

/// Creates the database if it does not exist, then applies pending migrations.
///
/// Blocking (libpq): call it before the async runtime starts or inside `spawn_blocking`.
pub fn prepare(url: &DatabaseUrl) -> anyhow::Result<()> {
    ensure_database(url)?;
    let mut conn = connect(url)?;
    migrate(&mut conn)
}

/// Connects with a blocking connection, explaining a failure in one line.
pub fn connect(url: &DatabaseUrl) -> anyhow::Result<PgConnection> {
    PgConnection::establish(url.expose()).map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to PostgreSQL at {url}: {}. Is PostgreSQL running? Start it, or point \
             DATABASE_URL at a reachable server",
            one_line(&e.to_string())
        )
    })
}

/// Creates the database named in `url` unless it exists, via the server's `postgres` database.
fn ensure_database(url: &DatabaseUrl) -> anyhow::Result<()> {
    match PgConnection::establish(url.expose()) {
        Ok(_) => return Ok(()),
        Err(e) if !e.to_string().contains("does not exist") => {
            connect(url)?; // reports the failure in the usual words
        }
        Err(_) => {}
    }
    let name = url.database_name();
    let mut admin = connect(&url.with_database("postgres"))?;
    let created =
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name))).execute(&mut admin);
    match created {
        Ok(_) => {
            tracing::info!(database = %name, "created the database");
            Ok(())
        }
        // Another instance created it at the same moment.
        Err(e) if e.to_string().contains("already exists") => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create the database {name}")),
    }
}

/// Applies pending migrations, one instance at a time.
pub fn migrate(conn: &mut PgConnection) -> anyhow::Result<()> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.len())
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
    let applied = applied?;
    if applied > 0 {
        tracing::info!(applied, "applied database migrations");
    }
    Ok(())
}

/// Builds the async pool. Connections are made lazily, so this does not touch the network.
pub fn pool(url: &DatabaseUrl, max_size: usize) -> anyhow::Result<Pool> {
    let mut config = ManagerConfig::default();
    // `Verified` would cost a round trip on every checkout; a broken connection is detected anyway.
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::new_with_config(url.expose(), config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("cannot build the database pool")
}

/// Quotes an SQL identifier (a database name) for statements that cannot take parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("ual_todo"), "\"ual_todo\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
