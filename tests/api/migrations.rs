//! Every migration's `down.sql` undoes its `up.sql`.

use diesel::{RunQueryDsl as _, sql_types::BigInt};
use diesel_migrations::MigrationHarness as _;
use ual_todo::db::MIGRATIONS;

use crate::helpers::TestDb;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn objects(conn: &mut diesel::PgConnection) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace \
         WHERE ns.nspname = 'public' AND c.relname <> '__diesel_schema_migrations' \
         AND c.relname NOT LIKE '__diesel_schema_migrations%'",
    )
    .get_result::<Count>(conn)
    .unwrap()
    .n
}

#[test]
fn migrations_revert_to_an_empty_schema_and_apply_again() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let migrated = objects(&mut conn);
    assert!(migrated > 0);

    conn.revert_all_migrations(MIGRATIONS)
        .expect("every down.sql runs");
    assert_eq!(objects(&mut conn), 0, "nothing is left behind");

    conn.run_pending_migrations(MIGRATIONS)
        .expect("and every up.sql runs again");
    assert_eq!(objects(&mut conn), migrated);
}
