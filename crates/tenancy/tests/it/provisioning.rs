//! Creating and deleting tenants is all or nothing.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;
use tenancy::migrate::tenant_migrations;
use tenancy::testing::TestDb;
use tenancy::{Error, NewTenant, Slug};

/// A tenant migration that creates a table and then fails.
struct FailingMigration;

impl MigrationName for FailingMigration {
    fn name(&self) -> &str {
        "m99991231_000001_failing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FailingMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared("CREATE TABLE half_done (id int)")
            .await?;
        conn.execute_unprepared("SELECT 1 / 0").await?;
        Ok(())
    }
}

async fn count(db: &TestDb, sql: &str, slug: &str) -> i64 {
    let row = db
        .db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [slug.into()],
        ))
        .await
        .expect("query")
        .expect("row");
    row.try_get_by_index(0).expect("count")
}

async fn leftovers(db: &TestDb, slug: &str) -> (i64, i64, i64) {
    (
        count(
            db,
            "SELECT count(*) FROM public.tenants WHERE slug = $1",
            slug,
        )
        .await,
        count(
            db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 't_' || replace($1, '-', '_')",
            slug,
        )
        .await,
        count(
            db,
            "SELECT count(*) FROM public.tenant_domains d WHERE d.host LIKE $1 || '%'",
            slug,
        )
        .await,
    )
}

fn new_tenant(slug: &str, domains: &[&str]) -> NewTenant {
    let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
    NewTenant::new(
        Slug::parse(slug).expect("slug"),
        "Test",
        &domains,
        "localhost",
    )
    .expect("new tenant")
}

#[tokio::test]
async fn failing_migration_leaves_nothing_behind() {
    let db = TestDb::new(2).await;
    let mut migrations = tenant_migrations();
    migrations.push(Box::new(FailingMigration));
    let err = db
        .registry()
        .create_with(&new_tenant("broken", &["broken.example.org"]), &migrations)
        .await
        .expect_err("must fail");
    assert!(
        matches!(err, Error::Migration { ref version, .. } if version == "m99991231_000001_failing"),
        "{err}"
    );
    assert_eq!(leftovers(&db, "broken").await, (0, 0, 0));

    // The same slug provisions cleanly afterwards.
    let tenant = db
        .registry()
        .create(&new_tenant("broken", &["broken.example.org"]))
        .await
        .expect("create");
    assert_eq!(tenant.schema().as_str(), "t_broken");
    assert_eq!(leftovers(&db, "broken").await, (1, 1, 1));
}

#[tokio::test]
async fn duplicates_are_refused_without_side_effects() {
    let db = TestDb::new(2).await;
    let registry = db.registry();
    registry
        .create(&new_tenant("acme", &["crm.acme.io"]))
        .await
        .expect("create");
    let err = registry
        .create(&new_tenant("acme", &[]))
        .await
        .expect_err("duplicate slug");
    assert!(matches!(err, Error::TenantExists(_)), "{err}");

    // A taken domain fails the second tenant after its schema was built:
    // the schema and row must be rolled back.
    let err = registry
        .create(&new_tenant("other", &["crm.acme.io"]))
        .await
        .expect_err("taken domain");
    assert!(matches!(err, Error::DomainTaken(_)), "{err}");
    assert_eq!(leftovers(&db, "other").await, (0, 0, 0));
}

#[tokio::test]
async fn invalid_input_is_refused_before_any_sql() {
    for bad in ["www.localhost", "a b", "-x-", "demo.localhost"] {
        let r = NewTenant::new(
            Slug::parse("fine").expect("slug"),
            "Fine",
            &[bad.to_string()],
            "localhost",
        );
        assert!(matches!(r, Err(Error::InvalidDomain(..))), "{bad}");
    }
    for name in ["", "   ", "a\u{0}b"] {
        let r = NewTenant::new(Slug::parse("fine").expect("slug"), name, &[], "localhost");
        assert!(matches!(r, Err(Error::InvalidDisplayName(_))), "{name:?}");
    }
}

#[tokio::test]
async fn delete_drops_schema_and_rows() {
    let db = TestDb::new(2).await;
    let registry = db.registry();
    registry
        .create(&new_tenant("gone", &["gone.example.org"]))
        .await
        .expect("create");
    assert_eq!(leftovers(&db, "gone").await, (1, 1, 1));
    registry
        .delete(&Slug::parse("gone").expect("slug"))
        .await
        .expect("delete");
    assert_eq!(leftovers(&db, "gone").await, (0, 0, 0));
    let err = registry
        .delete(&Slug::parse("gone").expect("slug"))
        .await
        .expect_err("already gone");
    assert!(matches!(err, Error::TenantNotFound(_)));
}

#[tokio::test]
async fn concurrent_creates_of_one_slug_yield_one_tenant() {
    let db = TestDb::new(4).await;
    let registry = db.registry();
    let attempts = (0..4).map(|_| {
        let registry = registry.clone();
        async move { registry.create(&new_tenant("race", &[])).await }
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1);
    for r in results.into_iter().filter_map(Result::err) {
        assert!(
            matches!(r, Error::TenantExists(_) | Error::OrphanSchema(_)),
            "{r}"
        );
    }
    assert_eq!(leftovers(&db, "race").await.0, 1);
}

/// How many PL/pgSQL functions the backend behind `db` has compiled.
async fn compiled_functions(db: &impl ConnectionTrait) -> i64 {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'PL/pgSQL function'",
    ))
    .await
    .expect("query")
    .expect("row")
    .try_get_by_index(0)
    .expect("count")
}

#[tokio::test]
async fn schemas_are_made_on_connections_that_do_not_stay_in_the_pool() {
    // One pooled connection: whatever provisioning ran on the pool, it ran
    // there. A backend keeps every function it ran, with its plans, and
    // walks them all on each invalidation any DDL sends.
    let db = TestDb::new(1).await;
    let registry = db.registry();
    // Shared migrations ran some of their own there.
    let before = compiled_functions(&db.db).await;
    registry
        .create(
            &NewTenant::new(Slug::parse("acme").expect("slug"), "Acme", &[], "localhost")
                .expect("tenant"),
        )
        .await
        .expect("create");
    registry
        .fill_spares(1, &tenant_migrations(), tenancy::spares::SpareNames::Own)
        .await
        .expect("spare");
    assert_eq!(compiled_functions(&db.db).await, before);
    // The tenant works on the pool all the same, and its triggers then run
    // there.
    let tenant = registry
        .find_by_slug(&Slug::parse("acme").expect("slug"))
        .await
        .expect("find")
        .expect("tenant");
    db.db
        .execute_unprepared(&format!(
            "INSERT INTO {}.branches (id, name) VALUES (gen_random_uuid(), 'HQ')",
            tenant.schema().quoted()
        ))
        .await
        .expect("insert");
    assert!(compiled_functions(&db.db).await > before);
}
