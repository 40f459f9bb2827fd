//! Which device wrote a synced record's latest versions, so that a
//! device's edits queued offline on top of each other (all made against the
//! version it last pulled) are not conflicts with themselves: a mutation
//! made against an older version is stale only if someone else wrote the
//! record since. `last_device` wrote the latest version, and every version
//! from `last_device_from` on, with nobody else writing in between; any
//! other writer (REST, SQL, another device) starts a new run.
//!
//! The device is named transaction-locally (`strata.device`). The update
//! recorder records it in the same upsert that records the field versions,
//! at the cost of two scalar columns: the tables' `sync_update` triggers
//! move from the shared `public.sync_track_update` to this tenant's
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
ALTER TABLE sync_changes ADD COLUMN last_device text, ADD COLUMN last_device_from bigint;

CREATE FUNCTION sync_track_update_by_device() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    diff text;
BEGIN
    SELECT string_agg(format('%L, CASE WHEN n.%I IS DISTINCT FROM o.%I THEN n.version END',
                             attname, attname, attname), ', ')
      INTO diff
      FROM pg_attribute
     WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped
       AND attname NOT IN ('id', 'version', 'created_at', 'updated_at');
    EXECUTE format($q$
        INSERT INTO sync_changes AS c
               (model, record_id, version, deleted, created_txid, txid, field_versions,
                last_device, last_device_from)
        SELECT %L, n.id, n.version, false, pg_current_xact_id(), pg_current_xact_id(),
               jsonb_strip_nulls(jsonb_build_object(%s)), $1, n.version
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.version IS DISTINCT FROM o.version
        ON CONFLICT (model, record_id) DO UPDATE
           SET version = EXCLUDED.version, deleted = false, txid = EXCLUDED.txid, changed_at = now(),
               created_txid = CASE WHEN c.deleted THEN EXCLUDED.created_txid ELSE c.created_txid END,
               field_versions = CASE WHEN c.deleted THEN '{}'
                                     ELSE c.field_versions || EXCLUDED.field_versions END,
               last_device = EXCLUDED.last_device,
               last_device_from = CASE WHEN NOT c.deleted AND c.last_device = EXCLUDED.last_device
                                       THEN c.last_device_from ELSE EXCLUDED.last_device_from END
    $q$, TG_ARGV[0], diff) USING nullif(current_setting('strata.device', true), '');
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
             ALTER TABLE sync_changes DROP COLUMN last_device, DROP COLUMN last_device_from;",
        );
        crate::run(manager, &sql).await
    }
}
