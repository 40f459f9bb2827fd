//! Spare schemas: a tenant created while spares are ready takes one, and
//! is then indistinguishable from one migrated on the spot.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::migrate::tenant_migrations;
use tenancy::spares::SpareNames;
use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug, TenantTx};

async fn one<T: sea_orm::TryGetable>(db: &impl ConnectionTrait, sql: &str) -> T {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index(0)
        .expect("value")
}

fn new(slug: &str) -> NewTenant {
    NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost").expect("tenant")
}

/// What a tenant schema holds, object by object, named without the schema.
async fn shape(db: &TestDb, schema: &str) -> Vec<String> {
    let rows = db
        .db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT kind || ' ' || name FROM ( \
               SELECT 'rel'::text AS kind, c.relname || ':' || c.relkind::text AS name FROM pg_class c \
                 WHERE c.relnamespace = $1::regnamespace \
               UNION ALL SELECT 'fn', p.proname::text || ':' || coalesce(array_to_string(p.proconfig, ','), '') \
                 FROM pg_proc p WHERE p.pronamespace = $1::regnamespace \
               UNION ALL SELECT 'trigger', t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal \
               UNION ALL SELECT 'constraint', conname::text FROM pg_constraint \
                 WHERE connamespace = $1::regnamespace \
               UNION ALL SELECT 'migration', v FROM tenant_migrations_of($1) v \
             ) s ORDER BY 1",
            [schema.into()],
        ))
        .await
        .expect("shape");
    rows.iter()
        .map(|r| {
            r.try_get_by_index::<String>(0)
                .expect("text")
                .replace(schema, "<schema>")
        })
        .collect()
}

/// Writes a client in `tenant`: the journal entries and change rows of
/// clients then there.
async fn write_one(db: &TestDb, tenant: &tenancy::Tenant) -> (i64, i64) {
    let tx = TenantTx::begin(&db.db, tenant).await.expect("tx");
    tx.conn()
        .execute_unprepared(
            "INSERT INTO clients (id, name, status) VALUES (gen_random_uuid(), 'A', 'lead')",
        )
        .await
        .expect("insert");
    let journal: i64 = one(
        tx.conn(),
        "SELECT count(*) FROM journal WHERE model = 'clients'",
    )
    .await;
    let changes: i64 = one(
        tx.conn(),
        "SELECT count(*) FROM sync_changes WHERE model = 'clients'",
    )
    .await;
    tx.commit().await.expect("commit");
    (journal, changes)
}

#[tokio::test]
async fn a_tenant_made_from_a_spare_is_the_same_as_one_migrated_on_the_spot() {
    let db = TestDb::new(4).await;
    db.db
        .execute_unprepared(
            "CREATE FUNCTION tenant_migrations_of(s text) RETURNS SETOF text LANGUAGE plpgsql AS \
             $$ BEGIN RETURN QUERY EXECUTE format('SELECT version FROM %I.tenant_migrations', s); END $$",
        )
        .await
        .expect("helper");
    let registry = db.registry();
    // Without spares: migrated on the spot.
    let plain = registry.create(&new("plain")).await.expect("plain");

    assert_eq!(
        registry
            .fill_spares(3, &tenant_migrations(), SpareNames::Slug)
            .await
            .expect("fill"),
        3
    );
    assert_eq!(registry.spare_count().await.expect("count"), 3);
    let spared = registry.create(&new("spared")).await.expect("spared");
    assert_eq!(
        registry.spare_count().await.expect("count"),
        2,
        "a spare was taken"
    );

    // Renamed after its slug; same tables, indexes, functions (search_path
    // moved with the schema), triggers and migrations.
    assert_eq!(spared.schema().as_str(), "t_spared");
    let (a, b) = (
        shape(&db, plain.schema().as_str()).await,
        shape(&db, spared.schema().as_str()).await,
    );
    assert!(a.len() > 100, "{a:?}");
    assert_eq!(a, b);

    // Its triggers work: the journal and the sync log see a write.
    assert_eq!(write_one(&db, &spared).await, (1, 1));

    // A spare that keeps its name: the registry names it as the tenant's
    // schema, and it is the same as the others.
    registry.drop_spares().await.expect("drop");
    registry
        .fill_spares(1, &tenant_migrations(), SpareNames::Own)
        .await
        .expect("fill");
    let owned = registry.create(&new("owned")).await.expect("owned");
    assert_eq!(registry.spare_count().await.expect("count"), 0);
    assert!(
        owned.schema().as_str().starts_with("tenant_"),
        "{}",
        owned.schema()
    );
    let again = registry
        .get(&Slug::parse("owned").expect("slug"))
        .await
        .expect("read back");
    assert_eq!(again.schema(), owned.schema());
    assert_eq!(a, shape(&db, owned.schema().as_str()).await);
    assert_eq!(write_one(&db, &owned).await, (1, 1));

    // A spare made by a newer Strata (a migration this one does not know)
    // is left alone.
    registry.drop_spares().await.expect("drop");
    registry
        .fill_spares(1, &tenant_migrations(), SpareNames::Slug)
        .await
        .expect("fill");
    let spare: String = one(
        &db.db,
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'spare\\_%'",
    )
    .await;
    db.db
        .execute_unprepared(&format!(
            "INSERT INTO \"{spare}\".tenant_migrations (version) VALUES ('m99991231_000001_future')"
        ))
        .await
        .expect("future");
    registry.create(&new("later")).await.expect("later");
    assert_eq!(registry.spare_count().await.expect("count"), 1);

    // Tenants created at once, fewer spares than tenants: each gets a
    // schema of its own, spare or new.
    registry.drop_spares().await.expect("drop");
    registry
        .fill_spares(2, &tenant_migrations(), SpareNames::Own)
        .await
        .expect("fill");
    let made = futures::future::join_all((0..5).map(|i| {
        let r = registry.clone();
        async move { r.create(&new(&format!("burst-{i}"))).await }
    }))
    .await;
    assert!(made.iter().all(Result::is_ok), "{made:?}");
    assert_eq!(registry.spare_count().await.expect("count"), 0);
    let burst: i64 = one(
        &db.db,
        "SELECT count(DISTINCT n.oid) FROM public.tenants t \
         JOIN pg_namespace n ON n.nspname = t.schema_name WHERE t.slug LIKE 'burst-%'",
    )
    .await;
    assert_eq!(burst, 5);
}
