//! The trigger functions of sync change tracking, shared by every tenant
//! schema (the tenant migration `create_sync_tracking` attaches them). One
//! compiled copy serves all tenants; each writes to the change log of the
//! schema of the table that fired it, whatever the writer's search_path.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
-- Bumps the version of a row whose writer did not (an operator's SQL, say)
-- when a synced field changed. Columns named in the trigger's arguments
-- (bookkeeping such as users.last_login_at) do not count as a change.
-- Writers that bump the version themselves (the API, pushes) take the
-- first, cheap exit.
CREATE FUNCTION public.sync_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version <> OLD.version THEN
        RETURN NEW;
    END IF;
    IF to_jsonb(NEW) - 'version' - 'updated_at' - TG_ARGV
       = to_jsonb(OLD) - 'version' - 'updated_at' - TG_ARGV THEN
        RETURN NEW;
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- Statement-level recorders: one set-based upsert into the tenant's
-- sync_changes per statement, however many rows it touched.
CREATE FUNCTION public.sync_track_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %I.sync_changes AS c (model, record_id, version, deleted, created_txid, txid)
        SELECT %L, n.id, n.version, false, pg_current_xact_id(), pg_current_xact_id()
        FROM new_rows n
        ON CONFLICT (model, record_id) DO UPDATE
           SET version = EXCLUDED.version, deleted = false, txid = EXCLUDED.txid, changed_at = now(),
               created_txid = CASE WHEN c.deleted THEN EXCLUDED.created_txid ELSE c.created_txid END,
               field_versions = CASE WHEN c.deleted THEN '{}' ELSE c.field_versions END
    $q$, TG_TABLE_SCHEMA, TG_ARGV[0]);
    RETURN NULL;
END $$;

-- Also records which columns each row changed, at which version, for
-- field-level merges: a column-by-column comparison built from the catalog.
CREATE FUNCTION public.sync_track_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
        INSERT INTO %I.sync_changes AS c
               (model, record_id, version, deleted, created_txid, txid, field_versions)
        SELECT %L, n.id, n.version, false, pg_current_xact_id(), pg_current_xact_id(),
               jsonb_strip_nulls(jsonb_build_object(%s))
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.version IS DISTINCT FROM o.version
        ON CONFLICT (model, record_id) DO UPDATE
           SET version = EXCLUDED.version, deleted = false, txid = EXCLUDED.txid, changed_at = now(),
               created_txid = CASE WHEN c.deleted THEN EXCLUDED.created_txid ELSE c.created_txid END,
               field_versions = CASE WHEN c.deleted THEN '{}'
                                     ELSE c.field_versions || EXCLUDED.field_versions END
    $q$, TG_TABLE_SCHEMA, TG_ARGV[0], diff);
    RETURN NULL;
END $$;

CREATE FUNCTION public.sync_track_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %I.sync_changes AS c (model, record_id, version, deleted, created_txid, txid)
        SELECT %L, o.id, o.version + 1, true, pg_current_xact_id(), pg_current_xact_id()
        FROM old_rows o
        ON CONFLICT (model, record_id) DO UPDATE
           SET version = EXCLUDED.version, deleted = true, txid = EXCLUDED.txid, changed_at = now()
    $q$, TG_TABLE_SCHEMA, TG_ARGV[0]);
    RETURN NULL;
END $$;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP FUNCTION public.sync_track_delete(); DROP FUNCTION public.sync_track_update(); \
                 DROP FUNCTION public.sync_track_insert(); DROP FUNCTION public.sync_bump_version();",
            )
            .await?;
        Ok(())
    }
}
