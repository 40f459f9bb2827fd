//! An inserted record's change row is written once, with the device that
//! created it. Before, the shared `public.sync_track_insert` wrote the row
//! (a statement planned anew on every insert) and `sync_note_device` then
//! updated it: an UPDATE joined with every change row of the model, so a
//! push of 5,000 records into a tenant of 400,000 read all 400,000 and
//! wrote each new change row twice. One tenant function now does both, in
//! one statement planned once per connection.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The synced tables and their models.
const SYNCED: &[(&str, &str)] = &[
    ("branches", "branches"),
    ("users", "users"),
    ("clients", "clients"),
    ("contacts", "contacts"),
    ("tasks", "tasks"),
    ("notes", "notes"),
];

/// Trigger `<table>_<name>`, which hands `table`'s inserted rows to
/// `function` once per statement.
fn insert_trigger(table: &str, model: &str, function: &str, name: &str) -> String {
    format!(
        "CREATE TRIGGER {table}_{name} AFTER INSERT ON {table} \
         REFERENCING NEW TABLE AS new_rows \
         FOR EACH STATEMENT EXECUTE FUNCTION {function}('{model}');\n"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            r#"
CREATE FUNCTION sync_track_insert_by_device() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO sync_changes AS c
           (model, record_id, version, deleted, created_txid, txid, created_by_device)
    SELECT TG_ARGV[0], n.id, n.version, false, pg_current_xact_id(), pg_current_xact_id(),
           nullif(current_setting('strata.device', true), '')
    FROM new_rows n
    ON CONFLICT (model, record_id) DO UPDATE
       SET version = EXCLUDED.version, deleted = false, txid = EXCLUDED.txid, changed_at = now(),
           created_txid = CASE WHEN c.deleted THEN EXCLUDED.created_txid ELSE c.created_txid END,
           field_versions = CASE WHEN c.deleted THEN '{}' ELSE c.field_versions END,
           created_by_device = coalesce(EXCLUDED.created_by_device, c.created_by_device);
    RETURN NULL;
END
$$;
"#,
        );
        for (table, model) in SYNCED {
            sql.push_str(&format!(
                "DROP TRIGGER {table}_sync_insert_device ON {table};\n\
                 DROP TRIGGER {table}_sync_insert ON {table};\n"
            ));
            sql.push_str(&insert_trigger(
                table,
                model,
                "sync_track_insert_by_device",
                "sync_insert",
            ));
        }
        sql.push_str("DROP FUNCTION sync_note_device();");
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            r#"
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
            sql.push_str(&format!("DROP TRIGGER {table}_sync_insert ON {table};\n"));
            sql.push_str(&insert_trigger(
                table,
                model,
                "public.sync_track_insert",
                "sync_insert",
            ));
            sql.push_str(&insert_trigger(
                table,
                model,
                "sync_note_device",
                "sync_insert_device",
            ));
        }
        sql.push_str("DROP FUNCTION sync_track_insert_by_device();");
        crate::run(manager, &sql).await
    }
}
