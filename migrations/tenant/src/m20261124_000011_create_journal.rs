//! The change journal: an append-only record of every change to the CRM
//! tables, written by statement-level triggers in the writing transaction
//! (nothing unrecorded, nothing recorded for a rolled-back write), whoever
//! writes: the API, a sync push, a job or an operator's SQL. Each entry
//! holds the changed fields as `{field: [old, new]}`, the writer as the
//! transaction stated it (`strata.actor`, `strata.user`, `strata.channel`,
//! `strata.request_id`; SQL that states nothing is `sql`), and the
//! transaction id. Private and bookkeeping columns never enter it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The journaled tables, their model names, and the columns left out
/// besides `version`, `created_at` and `updated_at`.
pub(crate) const JOURNALED: &[(&str, &str, &[&str])] = &[
    ("branches", "branches", &[]),
    (
        "users",
        "users",
        &["password_hash", "credentials_epoch", "last_login_at"],
    ),
    ("clients", "clients", &[]),
    ("contacts", "contacts", &[]),
    ("tasks", "tasks", &[]),
    ("notes", "notes", &[]),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            r#"
CREATE TABLE journal (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    model       text NOT NULL,
    record_id   uuid NOT NULL,
    action      text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    version     bigint NOT NULL,
    changes     jsonb NOT NULL,
    actor       text NOT NULL CHECK (actor IN ('user', 'operator', 'system', 'sql')),
    user_id     uuid,
    channel     text NOT NULL CHECK (channel IN ('rest', 'sync', 'job', 'sql')),
    request_id  text
);
-- Few indexes: each one costs every journaled write. One record's history
-- by record id (ids are UUIDs, unique across models); time ranges by a
-- BRIN index, as entries arrive in time order; other filters walk the
-- newest entries first, bounded by the page.
CREATE INDEX journal_record_idx ON journal (record_id, id);
CREATE INDEX journal_at_idx ON journal USING brin (at);

-- The tenant's own retention of the journal, if set (one row at most).
CREATE TABLE journal_settings (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    retention_days  integer CHECK (retention_days BETWEEN 1 AND 36500)
);

-- Auditors read every record and the journal, and write nothing.
INSERT INTO roles (id, name, description, is_system)
VALUES (gen_random_uuid(), 'Auditors', 'Read every record and the audit trail', true)
ON CONFLICT DO NOTHING;
INSERT INTO sync_permissions (role_id, model, can_pull, can_push)
SELECT r.id, m.model, true, false
FROM roles r
CROSS JOIN (VALUES ('branches'), ('users'), ('clients'), ('contacts'), ('tasks'), ('notes')) AS m (model)
WHERE r.name = 'Auditors'
ON CONFLICT DO NOTHING;

-- Nobody edits history: the journal only grows, and shrinks by retention.
CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the change journal is append-only';
END
$$;
CREATE TRIGGER journal_append_only BEFORE UPDATE ON journal
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();

-- One INSERT ... SELECT per statement, however many rows it touched,
-- built column by column from the catalog (no whole-row JSON) and planned
-- for the statement's transition tables. TG_ARGV: the model, then the
-- columns left out.
CREATE FUNCTION journal_record() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    skip text[] := ARRAY['id', 'version', 'created_at', 'updated_at'] || TG_ARGV[1:];
    cols text[];
    diff text;
    writer text := 'current_setting(''strata.actor'', true), current_setting(''strata.user'', true), '
                || 'current_setting(''strata.channel'', true), current_setting(''strata.request_id'', true)';
BEGIN
    SELECT array_agg(attname::text ORDER BY attnum) INTO cols
      FROM pg_attribute
     WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped AND attname <> ALL (skip);
    IF TG_OP = 'INSERT' THEN
        SELECT string_agg(format('%L, CASE WHEN n.%I IS NOT NULL THEN jsonb_build_array(NULL, n.%I) END',
                                 c, c, c), ', ') INTO diff FROM unnest(cols) c;
        EXECUTE format($q$
            INSERT INTO journal (model, record_id, action, version, changes, actor, user_id, channel, request_id)
            SELECT %L, n.id, 'create', n.version, jsonb_strip_nulls(jsonb_build_object(%s)), w.*
              FROM new_rows n, journal_writer(%s) w
        $q$, TG_ARGV[0], diff, writer);
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT string_agg(format('%L, CASE WHEN n.%I IS DISTINCT FROM o.%I THEN jsonb_build_array(o.%I, n.%I) END',
                                 c, c, c, c, c), ', ') INTO diff FROM unnest(cols) c;
        EXECUTE format($q$
            INSERT INTO journal (model, record_id, action, version, changes, actor, user_id, channel, request_id)
            SELECT %L, d.id, 'update', d.version, d.changes, w.*
              FROM (SELECT n.id, n.version, jsonb_strip_nulls(jsonb_build_object(%s)) AS changes
                      FROM new_rows n JOIN old_rows o ON o.id = n.id) d,
                   journal_writer(%s) w
             WHERE d.changes <> '{}'
        $q$, TG_ARGV[0], diff, writer);
    ELSE
        SELECT string_agg(format('%L, CASE WHEN o.%I IS NOT NULL THEN jsonb_build_array(o.%I, NULL) END',
                                 c, c, c), ', ') INTO diff FROM unnest(cols) c;
        EXECUTE format($q$
            INSERT INTO journal (model, record_id, action, version, changes, actor, user_id, channel, request_id)
            SELECT %L, o.id, 'delete', o.version + 1, jsonb_strip_nulls(jsonb_build_object(%s)), w.*
              FROM old_rows o, journal_writer(%s) w
        $q$, TG_ARGV[0], diff, writer);
    END IF;
    RETURN NULL;
END
$$;

-- The writer as the transaction stated it; `sql` where it stated nothing.
CREATE FUNCTION journal_writer(actor text, who text, channel text, request text)
RETURNS TABLE (actor text, user_id uuid, channel text, request_id text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(nullif(actor, ''), 'sql'), nullif(who, '')::uuid,
           coalesce(nullif(channel, ''), 'sql'), nullif(request, '')
$$;
"#,
        );
        for (table, model, private) in JOURNALED {
            let args: String = std::iter::once(*model)
                .chain(private.iter().copied())
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(
                "CREATE TRIGGER {table}_journal_insert AFTER INSERT ON {table} \
                   REFERENCING NEW TABLE AS new_rows \
                   FOR EACH STATEMENT EXECUTE FUNCTION journal_record({args});\n\
                 CREATE TRIGGER {table}_journal_update AFTER UPDATE ON {table} \
                   REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
                   FOR EACH STATEMENT EXECUTE FUNCTION journal_record({args});\n\
                 CREATE TRIGGER {table}_journal_delete AFTER DELETE ON {table} \
                   REFERENCING OLD TABLE AS old_rows \
                   FOR EACH STATEMENT EXECUTE FUNCTION journal_record({args});\n"
            ));
        }
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for (table, _, _) in JOURNALED {
            for op in ["insert", "update", "delete"] {
                sql.push_str(&format!("DROP TRIGGER {table}_journal_{op} ON {table};\n"));
            }
        }
        sql.push_str(
            "DROP TABLE journal, journal_settings; DROP FUNCTION journal_record(); \
             DROP FUNCTION journal_writer(text, text, text, text); \
             DROP FUNCTION journal_append_only(); \
             DELETE FROM roles WHERE name = 'Auditors' AND is_system;",
        );
        crate::run(manager, &sql).await
    }
}
