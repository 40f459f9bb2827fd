//! Test support: each test gets a database of its own, with the shared
//! migrations applied, dropped again when the test ends, and a Redis prefix
//! of its own. Only built with the `testing` feature.
//!
//! `STRATA_TEST_DATABASE_URL` names a database on the server to use (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `STRATA_TEST_REDIS_URL`
//! the Redis (default `redis://127.0.0.1:6379`).

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::config::RedisSettings;
use crate::{NewTenant, Registry, Tenant, TenantEvents};

/// A database created for one test and dropped when this is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub db: DatabaseConnection,
    pub redis: RedisSettings,
    admin_url: String,
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TestDb {
    /// A fresh database with the shared migrations applied; `pool_size`
    /// connections for the test's own use.
    pub async fn new(pool_size: u32) -> Self {
        let admin_url = std::env::var("STRATA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let redis_url = std::env::var("STRATA_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("strata_test_{id}");
        let admin = crate::db::connect_url(&admin_url, 1, Duration::from_secs(30))
            .await
            .expect("connect to the test PostgreSQL server");
        // From template0, which nobody can connect to: copying template1
        // fails while any session is connected to it, and the database does
        // not take up whatever was added to template1 on this server.
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        let db = crate::db::connect_url(&url, pool_size, Duration::from_secs(30))
            .await
            .expect("connect to test database");
        migration_shared::Migrator::up(&db, None)
            .await
            .expect("shared migrations");
        Self {
            name,
            url,
            db,
            redis: RedisSettings {
                url: redis_url,
                prefix: format!("strata-test-{id}"),
            },
            admin_url,
        }
    }

    /// A registry on this database, announcing on this test's Redis prefix.
    pub fn registry(&self) -> Registry {
        Registry::new(
            self.db.clone(),
            TenantEvents::from_settings(&self.redis).expect("redis url"),
        )
    }

    /// Creates tenant `slug` with the shipped migrations.
    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        let new = NewTenant::new(
            crate::Slug::parse(slug).expect("valid slug"),
            slug,
            &[],
            "localhost",
        )
        .expect("valid tenant");
        self.registry().create(&new).await.expect("create tenant")
    }

    /// The id of an active administrator of `tenant`, made (without a
    /// password) if it has none; its credentials epoch is 1.
    pub async fn administrator(&self, tenant: &Tenant) -> uuid::Uuid {
        let tx = crate::TenantTx::begin(&self.db, tenant)
            .await
            .expect("begin");
        let row = tx
            .conn()
            .query_one_raw(crate::sql::stmt(
                "WITH found AS ( \
                   SELECT u.id FROM users u JOIN user_roles ur ON ur.user_id = u.id \
                   JOIN roles r ON r.id = ur.role_id \
                   WHERE r.name = 'Administrators' AND u.is_active LIMIT 1), \
                 made AS ( \
                   INSERT INTO users (id, email, full_name) \
                   SELECT gen_random_uuid(), 'administrator@strata.test', 'Administrator' \
                   WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id), \
                 granted AS ( \
                   INSERT INTO user_roles (user_id, role_id) \
                   SELECT made.id, r.id FROM made, roles r WHERE r.name = 'Administrators') \
                 SELECT id FROM found UNION ALL SELECT id FROM made",
                [],
            ))
            .await
            .expect("administrator")
            .expect("a row");
        let id = row.try_get_by_index(0).expect("uuid");
        tx.commit().await.expect("commit");
        id
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a
        // thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = crate::db::connect_url(&admin_url, 1, Duration::from_secs(30))
                    .await
                    .ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
