//! Statistics refreshed once a tenant's table has changed by as many rows
//! as it held when they were taken.

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use tenancy::statistics::{grown, refresh_grown};
use tenancy::testing::TestDb;

const TABLES: &[&str] = &["clients", "contacts", "no_such_table"];

async fn sql(db: &TestDb, sql: &str) {
    db.db.execute_unprepared(sql).await.expect("sql");
}

async fn relpages(db: &TestDb, table: &str) -> i32 {
    db.db
        .query_one_raw(tenancy::stmt(
            "SELECT relpages FROM pg_class WHERE oid = to_regclass($1)",
            [format!("t_acme.{table}").into()],
        ))
        .await
        .expect("pg_class")
        .expect("a row")
        .try_get_by_index(0)
        .expect("relpages")
}

#[tokio::test]
async fn a_table_that_outgrew_its_statistics_is_analysed_and_no_other() {
    let db = TestDb::new(2).await;
    let tenant = db.create_tenant("acme").await;
    let schemas = [tenant.schema().clone()];
    sql(
        &db,
        "ALTER TABLE t_acme.clients SET (autovacuum_enabled = false); \
              ALTER TABLE t_acme.contacts SET (autovacuum_enabled = false); \
              INSERT INTO t_acme.clients (id, name) \
              SELECT gen_random_uuid(), 'Small ' || g FROM generate_series(1, 60) g; \
              ANALYZE t_acme.clients; ANALYZE t_acme.contacts",
    )
    .await;
    assert_eq!(relpages(&db, "clients").await, 1);
    assert!(
        grown(&db.db, &schemas, TABLES)
            .await
            .expect("grown")
            .is_empty()
    );

    // Clients grow well past their 60 rows; contacts by fewer rows than
    // are worth a new plan.
    sql(
        &db,
        "INSERT INTO t_acme.clients (id, name) \
              SELECT gen_random_uuid(), 'Big ' || g FROM generate_series(1, 5000) g; \
              INSERT INTO t_acme.contacts (id, client_id, first_name) \
              SELECT gen_random_uuid(), (SELECT id FROM t_acme.clients LIMIT 1), 'C' || g \
              FROM generate_series(1, 500) g",
    )
    .await;
    // Backends report their counts a few seconds late.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let found = grown(&db.db, &schemas, TABLES).await.expect("grown");
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "the growth was never seen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names: Vec<&str> = found.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["clients"]);
    assert_eq!(
        refresh_grown(&db.db, &schemas, TABLES)
            .await
            .expect("refresh"),
        found
    );
    assert!(relpages(&db, "clients").await > 1);
    // Analysed as it is now: not grown any more.
    assert!(
        grown(&db.db, &schemas, TABLES)
            .await
            .expect("grown")
            .is_empty()
    );

    // Another tenant's tables of the same names are not this one's.
    let other = db.create_tenant("other").await;
    assert!(
        grown(&db.db, &[other.schema().clone()], TABLES)
            .await
            .expect("grown")
            .is_empty()
    );
}

#[tokio::test]
async fn a_dropped_schema_has_nothing_to_analyse() {
    let db = TestDb::new(2).await;
    let tenant = db.create_tenant("acme").await;
    db.db
        .execute_unprepared("DROP SCHEMA t_acme CASCADE")
        .await
        .expect("drop");
    assert!(
        refresh_grown(&db.db, &[tenant.schema().clone()], TABLES)
            .await
            .expect("refresh")
            .is_empty()
    );
}
