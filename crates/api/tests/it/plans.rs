//! Plans that follow a tenant's growth: a write statement planned while
//! the tenant was small must not keep scanning its tables once it is big.

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use serde_json::json;
use tenancy::testing::TestDb;

use crate::helpers::{spawn_with, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

/// Sequential scans of the tenant's change log so far, once the
/// statistics count `clients_written` rows inserted into its clients.
async fn change_log_scans(db: &TestDb, clients_written: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = db
            .db
            .query_one_raw(tenancy::stmt(
                "SELECT (SELECT n_tup_ins FROM pg_stat_user_tables \
                          WHERE schemaname = 't_acme' AND relname = 'clients'), \
                        (SELECT seq_scan FROM pg_stat_user_tables \
                          WHERE schemaname = 't_acme' AND relname = 'sync_changes')",
                [],
            ))
            .await
            .expect("statistics")
            .expect("a row");
        let written: i64 = row.try_get_by_index(0).expect("inserts");
        if written >= clients_written {
            return row.try_get_by_index(1).expect("scans");
        }
        assert!(
            Instant::now() < deadline,
            "statistics count {written} of {clients_written} inserts"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn creates_stay_key_lookups_as_a_tenant_grows() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let sql = |q: &'static str| db.db.execute_unprepared(q);
    // A small tenant, analysed as small; no autovacuum to analyse it again.
    sql(
        "ALTER TABLE t_acme.sync_changes SET (autovacuum_enabled = false); \
         ALTER TABLE t_acme.clients SET (autovacuum_enabled = false); \
         INSERT INTO t_acme.clients (id, name) \
         SELECT gen_random_uuid(), 'Small ' || g FROM generate_series(1, 60) g",
    )
    .await
    .expect("small tenant");
    sql("VACUUM (ANALYZE) t_acme.sync_changes")
        .await
        .expect("analyse");
    sql("VACUUM (ANALYZE) t_acme.clients")
        .await
        .expect("analyse");
    // One write connection: every create below runs on the same one.
    let settings = crate::helpers::settings(&db, 1);
    let app = spawn_with(&settings, true).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let create = |n: usize| {
        app.on("acme", reqwest::Method::POST, "/api/v1/clients")
            .bearer_auth(&token)
            .json(&json!({ "name": format!("Client {n}") }))
            .send()
    };
    // Past PostgreSQL's five custom plans, while the tenant is small.
    for n in 0..8 {
        assert_eq!(create(n).await.expect("create").status(), 201);
    }
    // The tenant grows behind the server's back.
    sql("INSERT INTO t_acme.clients (id, name) \
         SELECT gen_random_uuid(), 'Big ' || g FROM generate_series(1, 20000) g")
    .await
    .expect("big tenant");
    let before = change_log_scans(&db, 60 + 8 + 20_000).await;
    for n in 8..18 {
        assert_eq!(create(n).await.expect("create").status(), 201);
    }
    let after = change_log_scans(&db, 60 + 18 + 20_000).await;
    assert_eq!(
        after - before,
        0,
        "creates scanned the whole change log instead of looking a key up"
    );
}
