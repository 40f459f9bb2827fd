//! Which device last changed each field of a synced record, so that a
//! device's edits queued offline on top of each other are not conflicts
//! with themselves: a mutation made against an older version is stale only
//! if someone else changed a field since. `field_devices` maps a field to
//! `[version, device]`; the entry holds only while `version` is the field's
//! version in `field_versions`, so a later write by anyone else (REST, SQL,
//! another device) voids it without touching it.

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
ALTER TABLE sync_changes ADD COLUMN field_devices jsonb NOT NULL DEFAULT '{}';

-- Runs after the table's sync_update trigger (statement triggers fire in
-- name order), which recorded the fields each row changed at its version.
-- Writers that name no device (REST, SQL) cost nothing here.
CREATE FUNCTION sync_note_field_devices() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    device text := nullif(current_setting('strata.device', true), '');
BEGIN
    IF device IS NOT NULL THEN
        UPDATE sync_changes c
           SET field_devices = c.field_devices || (
               SELECT coalesce(jsonb_object_agg(f.key, jsonb_build_array(c.version, device)), '{}')
                 FROM jsonb_each_text(c.field_versions) f
                WHERE f.value::bigint = c.version)
          FROM new_rows n
         WHERE c.model = TG_ARGV[0] AND c.record_id = n.id;
    END IF;
    RETURN NULL;
END
$$;
"#,
        );
        for (table, model) in SYNCED {
            sql.push_str(&format!(
                "CREATE TRIGGER {table}_sync_update_device AFTER UPDATE ON {table} \
                 REFERENCING NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION sync_note_field_devices('{model}');\n"
            ));
        }
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for (table, _) in SYNCED {
            sql.push_str(&format!(
                "DROP TRIGGER {table}_sync_update_device ON {table};\n"
            ));
        }
        sql.push_str(
            "DROP FUNCTION sync_note_field_devices(); \
             ALTER TABLE sync_changes DROP COLUMN field_devices;",
        );
        crate::run(manager, &sql).await
    }
}
