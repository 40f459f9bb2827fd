//! Which device last changed each field of a synced record, so that a
//! device's edits queued offline on top of each other are not conflicts
//! with themselves: a mutation made against an older version is stale only
//! if someone else changed a field since. `field_devices` maps a field to
//! `[version, device]`; the entry holds only while `version` is the field's
//! version in `field_versions`, so a later write by anyone else (REST, SQL,
//! another device) voids it without touching it.
//!
//! The device is named transaction-locally (`strata.device`). The update
//! recorder records it in the same upsert that records the field versions,
//! so a push costs no extra write: the tables' `sync_update` triggers move
//! from the shared `public.sync_track_update` to this tenant's
//! `sync_track_update_by_device`, which does what it did and this.

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

CREATE FUNCTION sync_track_update_by_device() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    diff text;
    devices text;
    device text := nullif(current_setting('strata.device', true), '');
BEGIN
    SELECT string_agg(format('%L, CASE WHEN n.%I IS DISTINCT FROM o.%I THEN n.version END',
                             attname, attname, attname), ', '),
           string_agg(format('%L, CASE WHEN n.%I IS DISTINCT FROM o.%I THEN x.d END',
                             attname, attname, attname), ', ')
      INTO diff, devices
      FROM pg_attribute
     WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped
       AND attname NOT IN ('id', 'version', 'created_at', 'updated_at');
    -- Writers that name no device record none: no work per row.
    devices := CASE WHEN device IS NULL THEN '''{}''::jsonb'
                    ELSE format('jsonb_strip_nulls(jsonb_build_object(%s))', devices) END;
    EXECUTE format($q$
        INSERT INTO sync_changes AS c
               (model, record_id, version, deleted, created_txid, txid, field_versions, field_devices)
        SELECT %L, n.id, n.version, false, pg_current_xact_id(), pg_current_xact_id(),
               jsonb_strip_nulls(jsonb_build_object(%s)), %s
        FROM new_rows n JOIN old_rows o ON o.id = n.id,
             LATERAL (SELECT jsonb_build_array(n.version, $1::text) AS d) x
        WHERE n.version IS DISTINCT FROM o.version
        ON CONFLICT (model, record_id) DO UPDATE
           SET version = EXCLUDED.version, deleted = false, txid = EXCLUDED.txid, changed_at = now(),
               created_txid = CASE WHEN c.deleted THEN EXCLUDED.created_txid ELSE c.created_txid END,
               field_versions = CASE WHEN c.deleted THEN '{}'
                                     ELSE c.field_versions || EXCLUDED.field_versions END,
               field_devices = CASE WHEN c.deleted THEN '{}'
                                    ELSE c.field_devices || EXCLUDED.field_devices END
    $q$, TG_ARGV[0], diff, devices) USING device;
    RETURN NULL;
END
$$;
"#,
        );
        for (table, model) in SYNCED {
            sql.push_str(&format!(
                "DROP TRIGGER {table}_sync_update ON {table};\n\
                 CREATE TRIGGER {table}_sync_update AFTER UPDATE ON {table} \
                 REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION sync_track_update_by_device('{model}');\n"
            ));
        }
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for (table, model) in SYNCED {
            sql.push_str(&format!(
                "DROP TRIGGER {table}_sync_update ON {table};\n\
                 CREATE TRIGGER {table}_sync_update AFTER UPDATE ON {table} \
                 REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION public.sync_track_update('{model}');\n"
            ));
        }
        sql.push_str(
            "DROP FUNCTION sync_track_update_by_device(); \
             ALTER TABLE sync_changes DROP COLUMN field_devices;",
        );
        crate::run(manager, &sql).await
    }
}
