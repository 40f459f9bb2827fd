//! Migration status and runs over many tenants, and the shared record of
//! every schema's applied migrations.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use tenancy::migrate::{
    Source, TenantMigrationStatus, TenantOutcome, migrate_all, rollback_tenant, status,
    tenant_migrations,
};
use tenancy::spares::SpareNames;
use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug, Tenant};

fn new(slug: &str) -> NewTenant {
    NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost").expect("tenant")
}

/// Applied and pending versions of each tenant, read from `source`.
async fn read(
    db: &TestDb,
    tenants: &[Tenant],
    source: Source,
) -> Vec<(String, Vec<String>, Vec<String>, bool)> {
    status(&db.db, tenants, &tenant_migrations(), source)
        .await
        .expect("status")
        .into_iter()
        .map(|s: TenantMigrationStatus| (s.slug, s.applied, s.pending, s.problem.is_some()))
        .collect()
}

async fn lines(db: &TestDb, sql: &str) -> Vec<String> {
    db.db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect()
}

/// The shared record, and what every schema's own table says, as
/// `schema version` lines.
async fn shared_and_own(db: &TestDb) -> (Vec<String>, Vec<String>) {
    let shared = lines(
        db,
        "SELECT schema_name || ' ' || version FROM public.tenant_schema_migrations ORDER BY 1",
    )
    .await;
    let own = lines(db, "SELECT l FROM every_schemas_migrations() l ORDER BY 1").await;
    (shared, own)
}

#[tokio::test]
async fn status_and_resume_over_many_tenants() {
    let db = TestDb::new(4).await;
    let set = tenant_migrations();
    let mut tenants = Vec::new();
    for i in 0..12 {
        tenants.push(db.create_tenant(&format!("tenant-{i:02}")).await);
    }
    for source in [Source::Shared, Source::Schemas] {
        let st = status(&db.db, &tenants, &set, source)
            .await
            .expect("status");
        assert!(st.iter().all(|s| s.is_current()));
    }

    for t in &tenants[..5] {
        let reverted = rollback_tenant(&db.db, t, &set, 1).await.expect("rollback");
        assert_eq!(reverted.len(), 1);
    }
    db.db
        .execute_unprepared("DROP SCHEMA t_tenant_11 CASCADE")
        .await
        .expect("drop");
    for source in [Source::Shared, Source::Schemas] {
        let st = status(&db.db, &tenants, &set, source)
            .await
            .expect("status");
        assert_eq!(st.iter().filter(|s| s.pending.len() == 1).count(), 5);
        assert!(st[11].problem.is_some());
    }

    let outcomes = migrate_all(&db.registry(), &tenants, &set, Source::Shared, 3, |_| {})
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
    for source in [Source::Shared, Source::Schemas] {
        let st = status(&db.db, &tenants[..11], &set, source)
            .await
            .expect("status");
        assert!(st.iter().all(|s| s.is_current()));
    }
}

#[tokio::test]
async fn the_shared_record_follows_every_schema() {
    let db = TestDb::new(4).await;
    db.db
        .execute_unprepared(
            "CREATE FUNCTION every_schemas_migrations() RETURNS SETOF text LANGUAGE plpgsql AS $$ \
             DECLARE s text; BEGIN \
               FOR s IN SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid \
                        WHERE c.relname = 'tenant_migrations' AND c.relkind = 'r' LOOP \
                 RETURN QUERY EXECUTE format('SELECT %L || '' '' || version FROM %I.tenant_migrations', s, s); \
               END LOOP; END $$",
        )
        .await
        .expect("helper");
    let registry = db.registry();
    let set = tenant_migrations();

    // Made on the spot, from a spare renamed after the slug, from one that
    // keeps its name; spares left ready; one tenant deleted, one rolled back.
    let plain = registry.create(&new("plain")).await.expect("plain");
    registry
        .fill_spares(1, &set, SpareNames::Slug)
        .await
        .expect("fill");
    let spared = registry.create(&new("spared")).await.expect("spared");
    registry
        .fill_spares(1, &set, SpareNames::Own)
        .await
        .expect("fill");
    let owned = registry.create(&new("owned")).await.expect("owned");
    registry
        .fill_spares(2, &set, SpareNames::Own)
        .await
        .expect("fill");
    let gone = registry.create(&new("gone")).await.expect("gone");
    registry.delete(gone.slug()).await.expect("delete");
    rollback_tenant(registry.ddl(), &spared, &set, 2)
        .await
        .expect("rollback");

    let (shared, own) = shared_and_own(&db).await;
    // Four schemas (three tenants and a spare), two versions rolled back.
    assert_eq!(shared.len(), 4 * set.len() - 2, "{shared:?}");
    assert_eq!(shared, own);
    assert!(!shared.iter().any(|l| l.starts_with("spare_")), "renamed");
    let tenants = [plain.clone(), spared.clone(), owned.clone()];
    assert_eq!(
        read(&db, &tenants, Source::Shared).await,
        read(&db, &tenants, Source::Schemas).await
    );
    assert_eq!(read(&db, &tenants, Source::Shared).await[1].2.len(), 2);

    // A run brings the record back in line with a schema whichever way it
    // drifted: versions it lacks come back without migrating anything...
    db.db
        .execute_unprepared(&format!(
            "DELETE FROM public.tenant_schema_migrations WHERE schema_name = '{}'",
            owned.schema().as_str()
        ))
        .await
        .expect("lose the record");
    let shown = read(&db, &tenants, Source::Shared).await;
    assert_eq!(shown[2].2.len(), set.len(), "all pending by the record");
    let outcomes = migrate_all(&registry, &tenants, &set, Source::Shared, 2, |_| {})
        .await
        .expect("run");
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, TenantOutcome::UpToDate { slug } if slug == "owned")),
        "{outcomes:?}"
    );
    // ... and one it has but the schema does not is shown by reading the
    // schemas, and removed by the next run that migrates the schema.
    let (shared, own) = shared_and_own(&db).await;
    assert_eq!(shared, own);
    db.db
        .execute_unprepared(&format!(
            "INSERT INTO public.tenant_schema_migrations (schema_name, version) \
             VALUES ('{}', 'm99991231_000001_never')",
            plain.schema().as_str()
        ))
        .await
        .expect("a version that never ran");
    assert_ne!(shared_and_own(&db).await.0, shared_and_own(&db).await.1);
    rollback_tenant(registry.ddl(), &plain, &set, 1)
        .await
        .expect("rollback");
    migrate_all(&registry, &tenants, &set, Source::Schemas, 2, |_| {})
        .await
        .expect("run");
    let (shared, own) = shared_and_own(&db).await;
    assert_eq!(shared, own);

    // The shared migration that made the record filled it from every
    // schema already there.
    migration_shared::Migrator::down(&db.db, Some(1))
        .await
        .expect("down");
    migration_shared::Migrator::up(&db.db, None)
        .await
        .expect("up");
    let (shared, own) = shared_and_own(&db).await;
    assert_eq!(shared.len(), 4 * set.len(), "{shared:?}");
    assert_eq!(shared, own);
}
