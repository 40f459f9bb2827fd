//! Migrations of the `public` schema: the tenant registry and platform tables.
//!
//! One migration per file; the file name is the migration's version.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_tenants;
mod m20261122_000002_create_platform_operators;
mod m20261122_000003_create_sync_functions;
mod m20261123_000004_create_operator_sessions;
mod m20261123_000005_create_signup_verifications;
mod m20261124_000006_create_event_signals;
mod m20261124_000007_create_event_tenants;
mod m20261124_000008_create_platform_jobs;
mod m20261124_000009_create_platform_templates;
mod m20261126_000010_tenants_in_spare_schemas;
mod m20261127_000011_record_tenant_migrations_centrally;

/// The shared (public schema) migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_tenants::Migration),
            Box::new(m20261122_000002_create_platform_operators::Migration),
            Box::new(m20261122_000003_create_sync_functions::Migration),
            Box::new(m20261123_000004_create_operator_sessions::Migration),
            Box::new(m20261123_000005_create_signup_verifications::Migration),
            Box::new(m20261124_000006_create_event_signals::Migration),
            Box::new(m20261124_000007_create_event_tenants::Migration),
            Box::new(m20261124_000008_create_platform_jobs::Migration),
            Box::new(m20261124_000009_create_platform_templates::Migration),
            Box::new(m20261126_000010_tenants_in_spare_schemas::Migration),
            Box::new(m20261127_000011_record_tenant_migrations_centrally::Migration),
        ]
    }
}
