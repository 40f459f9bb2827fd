//! Migrations of every tenant's schema: the CRM tables.
//!
//! They run with `search_path` set to the tenant's schema alone, so the
//! unqualified names below land in that schema and nowhere else. One migration
//! per file; the file name is the migration's version. Tenant migrations never
//! reference the `public` schema, so a tenant schema can be dropped or moved
//! on its own.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_branches;
mod m20261122_000002_create_users_and_roles;
mod m20261122_000003_create_clients_and_contacts;
mod m20261122_000004_create_tasks_and_notes;
mod m20261122_000005_create_sync_tracking;
mod m20261123_000006_keep_an_administrator;
mod m20261123_000007_add_client_industry;
mod m20261123_000008_session_standing;
mod m20261123_000009_track_creating_device;
mod m20261124_000010_note_writing_devices;
mod m20261124_000011_create_journal;
mod m20261124_000012_create_events;
mod m20261124_000013_create_notifications;
mod m20261124_000014_note_event_tenants;
mod m20261124_000015_order_deliveries_per_record;
mod m20261124_000016_index_journal_by_transaction;
mod m20261124_000017_journal_diff_once;
mod m20261124_000018_journal_functions_per_table;
mod m20261124_000019_follow_the_journal_once;
mod m20261124_000020_create_field_sets;
mod m20261125_000021_announce_rule_changes;
mod m20261125_000022_index_list_order;
mod m20261126_000023_track_inserts_once;
mod m20261127_000024_tell_the_writer_what_changed;

/// The tenant migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_branches::Migration),
            Box::new(m20261122_000002_create_users_and_roles::Migration),
            Box::new(m20261122_000003_create_clients_and_contacts::Migration),
            Box::new(m20261122_000004_create_tasks_and_notes::Migration),
            Box::new(m20261122_000005_create_sync_tracking::Migration),
            Box::new(m20261123_000006_keep_an_administrator::Migration),
            Box::new(m20261123_000007_add_client_industry::Migration),
            Box::new(m20261123_000008_session_standing::Migration),
            Box::new(m20261123_000009_track_creating_device::Migration),
            Box::new(m20261124_000010_note_writing_devices::Migration),
            Box::new(m20261124_000011_create_journal::Migration),
            Box::new(m20261124_000012_create_events::Migration),
            Box::new(m20261124_000013_create_notifications::Migration),
            Box::new(m20261124_000014_note_event_tenants::Migration),
            Box::new(m20261124_000015_order_deliveries_per_record::Migration),
            Box::new(m20261124_000016_index_journal_by_transaction::Migration),
            Box::new(m20261124_000017_journal_diff_once::Migration),
            Box::new(m20261124_000018_journal_functions_per_table::Migration),
            Box::new(m20261124_000019_follow_the_journal_once::Migration),
            Box::new(m20261124_000020_create_field_sets::Migration),
            Box::new(m20261125_000021_announce_rule_changes::Migration),
            Box::new(m20261125_000022_index_list_order::Migration),
            Box::new(m20261126_000023_track_inserts_once::Migration),
            Box::new(m20261127_000024_tell_the_writer_what_changed::Migration),
        ]
    }
}

/// Runs one SQL script (several statements) in a single round trip.
async fn run(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}
