//! Migration status and runs over many tenants.

use sea_orm::ConnectionTrait;
use tenancy::migrate::{TenantOutcome, migrate_all, rollback_tenant, status, tenant_migrations};
use tenancy::testing::TestDb;

#[tokio::test]
async fn status_and_resume_over_many_tenants() {
    let db = TestDb::new(4).await;
    let set = tenant_migrations();
    let mut tenants = Vec::new();
    for i in 0..12 {
        tenants.push(db.create_tenant(&format!("tenant-{i:02}")).await);
    }
    let st = status(&db.db, &tenants, &set).await.expect("status");
    assert!(st.iter().all(|s| s.is_current()));

    for t in &tenants[..5] {
        let reverted = rollback_tenant(&db.db, t, &set, 1).await.expect("rollback");
        assert_eq!(reverted.len(), 1);
    }
    db.db
        .execute_unprepared("DROP SCHEMA t_tenant_11 CASCADE")
        .await
        .expect("drop");
    let st = status(&db.db, &tenants, &set).await.expect("status");
    assert_eq!(st.iter().filter(|s| s.pending.len() == 1).count(), 5);
    assert!(st[11].problem.is_some());

    let outcomes = migrate_all(&db.db, &tenants, &set, 3, |_| {})
        .await
        .expect("run");
    let migrated = outcomes
        .iter()
        .filter(|o| matches!(o, TenantOutcome::Migrated { .. }))
        .count();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.is_failure()).collect();
    assert_eq!(migrated, 5);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].slug(), "tenant-11");
    // The dropped schema was not recreated in public or anywhere else.
    let st = status(&db.db, &tenants[..11], &set).await.expect("status");
    assert!(st.iter().all(|s| s.is_current()));
}
