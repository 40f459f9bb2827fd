//! `tenants up` over 100 tenants: failures isolated, resumable, and safe
//! with two migrators at once.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::migrate::{rollback_tenant, tenant_migrations};
use tenancy::testing::TestDb;

use crate::{migrator, stdout_json};

const TENANTS: usize = 100;

/// Reverts the newest tenant migration in every tenant, so it is pending.
async fn make_one_pending(db: &TestDb) {
    let set = tenant_migrations();
    for t in db.registry().list().await.expect("list") {
        rollback_tenant(&db.db, &t, &set, 1)
            .await
            .expect("rollback");
    }
}

fn summary(v: &serde_json::Value) -> (u64, u64, u64) {
    let s = &v["summary"];
    (
        s["migrated"].as_u64().unwrap_or(u64::MAX),
        s["up_to_date"].as_u64().unwrap_or(u64::MAX),
        s["failed"].as_u64().unwrap_or(u64::MAX),
    )
}

#[tokio::test]
async fn one_broken_tenant_does_not_stop_the_others() {
    let db = TestDb::new(2).await;
    for i in 0..TENANTS {
        db.create_tenant(&format!("tenant-{i:03}")).await;
    }
    let out = migrator(&db, &["tenants", "up", "--all", "--json"]).await;
    assert!(out.status.success());
    assert_eq!(summary(&stdout_json(&out)), (0, TENANTS as u64, 0));

    make_one_pending(&db).await;
    // The shared record and the schemas' own tables say the same.
    for args in [
        &["tenants", "status", "--json"][..],
        &["tenants", "status", "--verify", "--json"][..],
    ] {
        let out = migrator(&db, args).await;
        assert_eq!(stdout_json(&out)["behind"], TENANTS as u64, "{args:?}");
    }
    // tenant-042's migration table refuses the pending version, so its run
    // fails after the migration itself ran (and must be rolled back).
    let last = tenant_migrations()
        .last()
        .map(|m| m.name().to_owned())
        .expect("a migration");
    db.db
        .execute_unprepared(&format!(
            "ALTER TABLE t_tenant_042.tenant_migrations \
             ADD CONSTRAINT broken CHECK (version <> '{last}')"
        ))
        .await
        .expect("break");

    let out = migrator(
        &db,
        &["tenants", "up", "--all", "--concurrency", "4", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "a failed tenant fails the run");
    let report = stdout_json(&out);
    assert_eq!(summary(&report), (TENANTS as u64 - 1, 0, 1));
    let failed: Vec<_> = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter(|t| t["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["slug"], "tenant-042");
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("broken")),
        "{}",
        failed[0]
    );

    // The plain report names it too.
    let out = migrator(&db, &["tenants", "up", "--all"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed: tenant-042"));

    // Fixed, a re-run finishes just that one.
    db.db
        .execute_unprepared("ALTER TABLE t_tenant_042.tenant_migrations DROP CONSTRAINT broken")
        .await
        .expect("fix");
    let out = migrator(&db, &["tenants", "up", "--all", "--json"]).await;
    assert!(out.status.success());
    assert_eq!(summary(&stdout_json(&out)), (1, TENANTS as u64 - 1, 0));

    for args in [
        &["tenants", "status", "--json"][..],
        &["tenants", "status", "--verify", "--json"][..],
    ] {
        let out = migrator(&db, args).await;
        assert_eq!(stdout_json(&out)["behind"], 0, "{args:?}");
    }
}

#[tokio::test]
async fn two_migrators_at_once_apply_each_migration_once() {
    let db = TestDb::new(2).await;
    for i in 0..TENANTS {
        db.create_tenant(&format!("tenant-{i:03}")).await;
    }
    make_one_pending(&db).await;

    let args = ["tenants", "up", "--all", "--concurrency", "4", "--json"];
    let (a, b) = tokio::join!(migrator(&db, &args), migrator(&db, &args));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let (ma, _, fa) = summary(&stdout_json(&a));
    let (mb, _, fb) = summary(&stdout_json(&b));
    assert_eq!((fa, fb), (0, 0));
    assert_eq!(ma + mb, TENANTS as u64, "each tenant migrated exactly once");

    // Every schema has each migration recorded once, in its own table and
    // in the shared record, and its tables.
    let expected = tenant_migrations().len() as i64;
    let shared: i64 = db
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM public.tenant_schema_migrations",
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index(0)
        .expect("count");
    assert_eq!(shared, expected * TENANTS as i64);
    for t in db.registry().list().await.expect("list") {
        let q = t.schema().quoted();
        let row = db
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT (SELECT count(*) FROM {q}.tenant_migrations), \
                            (SELECT count(*) FROM {q}.sync_changes)"
                ),
            ))
            .await
            .expect("query")
            .expect("row");
        let n: i64 = row.try_get_by_index(0).expect("count");
        assert_eq!(n, expected, "{}", t.slug());
    }
}
