//! Which device created each synced record, so a pull can tell a device
//! "updated" (not "created") for a record it pushed itself: WatermelonDB
//! flags a "created" record that already exists locally. A writer names the
//! device transaction-locally with `set_config('strata.device', id, true)`;
//! other writers leave it empty.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The synced tables.
const SYNCED: &[(&str, &str)] = &[
    ("branches", "branches"),
    ("users", "users"),
    ("clients", "clients"),
    ("contacts", "contacts"),
    ("tasks", "tasks"),
    ("notes", "notes"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            r#"
ALTER TABLE sync_changes ADD COLUMN created_by_device text;

-- Runs after the table's sync_insert trigger (statement triggers fire in
-- name order), which made the sync_changes rows.
CREATE FUNCTION sync_note_device() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    device text := nullif(current_setting('strata.device', true), '');
BEGIN
    IF device IS NOT NULL THEN
        UPDATE sync_changes c SET created_by_device = device
        FROM new_rows n WHERE c.model = TG_ARGV[0] AND c.record_id = n.id;
    END IF;
    RETURN NULL;
END
$$;
"#,
        );
        for (table, model) in SYNCED {
            sql.push_str(&format!(
                "CREATE TRIGGER {table}_sync_insert_device AFTER INSERT ON {table} \
                 REFERENCING NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION sync_note_device('{model}');\n"
            ));
        }
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for (table, _) in SYNCED {
            sql.push_str(&format!(
                "DROP TRIGGER {table}_sync_insert_device ON {table};\n"
            ));
        }
        sql.push_str(
            "DROP FUNCTION sync_note_device(); \
             ALTER TABLE sync_changes DROP COLUMN created_by_device;",
        );
        crate::run(manager, &sql).await
    }
}
