//! Tenant transactions reach the tenant's schema only, and leave nothing on
//! the pooled connection.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::testing::TestDb;
use tenancy::{Error, TenantTx};

async fn search_path(conn: &impl ConnectionTrait) -> String {
    conn.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT current_setting('search_path')",
    ))
    .await
    .expect("query")
    .expect("row")
    .try_get_by_index(0)
    .expect("text")
}

#[tokio::test]
async fn search_path_is_local_to_the_transaction() {
    // One pooled connection: whatever a transaction leaves on it, the next
    // user sees.
    let db = TestDb::new(1).await;
    let a = db.create_tenant("alpha").await;
    let b = db.create_tenant("bravo").await;
    let before = search_path(&db.db).await;

    let tx = TenantTx::begin(&db.db, &a).await.expect("begin");
    assert_eq!(search_path(tx.conn()).await, "\"t_alpha\", public");
    tx.conn()
        .execute_unprepared("INSERT INTO branches (id, name) VALUES (gen_random_uuid(), 'a')")
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(search_path(&db.db).await, before);

    let tx = TenantTx::begin(&db.db, &b).await.expect("begin");
    let n: i64 = tx
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM branches",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get_by_index(0)
        .expect("i64");
    assert_eq!(n, 0, "bravo must not see alpha's branch");
    tx.rollback().await.expect("rollback");
    assert_eq!(search_path(&db.db).await, before);
}

#[tokio::test]
async fn a_missing_schema_is_an_error_not_a_fall_through() {
    let db = TestDb::new(2).await;
    let t = db.create_tenant("vanished").await;
    db.db
        .execute_unprepared("DROP SCHEMA t_vanished CASCADE")
        .await
        .expect("drop");
    let err = TenantTx::begin(&db.db, &t).await.err().expect("must fail");
    assert!(matches!(err, Error::SchemaMissing(_)), "{err}");
}
