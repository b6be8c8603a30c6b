use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::settings;

/// Instance-wide values kept in the database, so every instance on it agrees.
pub struct Setting;

impl Setting {
    /// The value stored under `name`; when there is none, stores `generate()` first. Two
    /// instances starting together both end up with the value that won the insert.
    pub async fn get_or_create(
        conn: &mut AsyncPgConnection,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> QueryResult<String> {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(generate())))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        settings::table
            .find(name)
            .select(settings::value)
            .first(conn)
            .await
    }
}
