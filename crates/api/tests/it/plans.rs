//! Plans that follow a tenant's growth: a statement planned while the
//! tenant was small must not keep scanning its tables once it is big.

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;
use serde_json::json;
use tenancy::testing::TestDb;

use crate::helpers::{spawn_with, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

/// The numbers of `sql`'s one row.
async fn numbers(db: &TestDb, sql: &str) -> Vec<i64> {
    let row = db
        .db
        .query_one_raw(tenancy::stmt(sql, []))
        .await
        .expect("statistics")
        .expect("a row");
    (0..row.column_names().len())
        .map(|i| row.try_get_by_index(i).expect("a number"))
        .collect()
}

/// Polls `sql` until `reached` holds of its row (the server's connections
/// report their statistics a few seconds late); that row.
async fn eventually(
    db: &TestDb,
    what: &str,
    sql: &str,
    reached: impl Fn(&[i64]) -> bool,
) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = numbers(db, sql).await;
        if reached(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "{what}: {row:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sequential scans of the tenant's change log so far, once the
/// statistics count `clients_written` rows inserted into its clients.
async fn change_log_scans(db: &TestDb, clients_written: i64) -> i64 {
    let row = eventually(
        db,
        "inserts counted, scans",
        "SELECT (SELECT n_tup_ins FROM pg_stat_user_tables \
                  WHERE schemaname = 't_acme' AND relname = 'clients'), \
                (SELECT seq_scan FROM pg_stat_user_tables \
                  WHERE schemaname = 't_acme' AND relname = 'sync_changes')",
        |r| r[0] >= clients_written,
    )
    .await;
    row[1]
}

/// Sequential and index scans of the tenant's clients table.
const CLIENT_SCANS: &str = "SELECT seq_scan, idx_scan FROM pg_stat_user_tables \
                            WHERE schemaname = 't_acme' AND relname = 'clients'";

/// Tenant `acme` with 60 clients, its `tables` analysed as they are then and
/// never again by autovacuum.
async fn small_tenant(tables: &[&str]) -> TestDb {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    db.db
        .execute_unprepared(
            "INSERT INTO t_acme.clients (id, name) \
             SELECT gen_random_uuid(), 'Small ' || g FROM generate_series(1, 60) g",
        )
        .await
        .expect("small tenant");
    for table in tables {
        db.db
            .execute_unprepared(&format!(
                "ALTER TABLE t_acme.{table} SET (autovacuum_enabled = false)"
            ))
            .await
            .expect("no autovacuum");
        db.db
            .execute_unprepared(&format!("VACUUM (ANALYZE) t_acme.{table}"))
            .await
            .expect("analyse");
    }
    db
}

#[tokio::test]
async fn creates_stay_key_lookups_as_a_tenant_grows() {
    let db = small_tenant(&["sync_changes", "clients"]).await;
    let sql = |q: &'static str| db.db.execute_unprepared(q);
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

#[tokio::test]
async fn reads_stay_key_lookups_as_a_tenant_grows() {
    let db = small_tenant(&["clients"]).await;
    let sql = |q: &'static str| db.db.execute_unprepared(q);
    let mut settings = crate::helpers::settings(&db, 2);
    settings.database.statistics_refresh_ms = 100;
    let app = spawn_with(&settings, true).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let id: uuid::Uuid = db
        .db
        .query_one_raw(tenancy::stmt("SELECT id FROM t_acme.clients LIMIT 1", []))
        .await
        .expect("a client")
        .expect("a row")
        .try_get_by_index(0)
        .expect("id");
    let gets = || async {
        for _ in 0..20 {
            let res = app
                .on(
                    "acme",
                    reqwest::Method::GET,
                    &format!("/api/v1/clients/{id}"),
                )
                .bearer_auth(&token)
                .send()
                .await
                .expect("get");
            assert_eq!(res.status(), 200);
        }
    };
    // Read connections plan the lookup once, while the table is one page:
    // a scan of it.
    let seq = numbers(&db, CLIENT_SCANS).await[0];
    gets().await;
    eventually(
        &db,
        "gets of a small tenant scan its one page",
        CLIENT_SCANS,
        |r| r[0] >= seq + 20,
    )
    .await;

    // The tenant grows behind the server's back; the server then writes it.
    sql("INSERT INTO t_acme.clients (id, name) \
         SELECT gen_random_uuid(), 'Big ' || g FROM generate_series(1, 20000) g")
    .await
    .expect("big tenant");
    let res = app
        .on("acme", reqwest::Method::POST, "/api/v1/clients")
        .bearer_auth(&token)
        .json(&json!({ "name": "One more" }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    eventually(
        &db,
        "the grown table's statistics refreshed: pages",
        "SELECT relpages::bigint FROM pg_class WHERE oid = 't_acme.clients'::regclass",
        |r| r[0] > 1,
    )
    .await;

    let before = numbers(&db, CLIENT_SCANS).await;
    gets().await;
    let after = eventually(
        &db,
        "gets of a grown tenant must look the key up, not scan 20,000 rows",
        CLIENT_SCANS,
        |r| r[1] >= before[1] + 20,
    )
    .await;
    assert_eq!(after[0], before[0], "gets scanned the grown table");
}
