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
const JOURNALED: &[(&str, &str, &[&str])] = &[
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
CREATE INDEX journal_record_idx ON journal (model, record_id, id);
CREATE INDEX journal_user_idx ON journal (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX journal_at_idx ON journal (at);

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

-- One INSERT ... SELECT per statement, however many rows it touched.
-- TG_ARGV: the model, then the columns left out.
CREATE FUNCTION journal_record() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    skip text[] := ARRAY['version', 'created_at', 'updated_at'] || TG_ARGV[1:];
    actor text := coalesce(nullif(current_setting('strata.actor', true), ''), 'sql');
    who uuid := nullif(current_setting('strata.user', true), '')::uuid;
    channel text := coalesce(nullif(current_setting('strata.channel', true), ''), 'sql');
    request text := nullif(current_setting('strata.request_id', true), '');
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO journal (model, record_id, action, version, changes, actor, user_id, channel, request_id)
        SELECT TG_ARGV[0], n.id, 'create', n.version,
               (SELECT coalesce(jsonb_object_agg(e.key, jsonb_build_array(NULL, e.value)), '{}')
                  FROM jsonb_each(to_jsonb(n) - skip) e WHERE e.value <> 'null'),
               actor, who, channel, request
          FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO journal (model, record_id, action, version, changes, actor, user_id, channel, request_id)
        SELECT TG_ARGV[0], d.id, 'update', d.version, d.changes, actor, who, channel, request
          FROM (SELECT n.id, n.version,
                       (SELECT jsonb_object_agg(e.key, jsonb_build_array(j.o -> e.key, e.value))
                          FROM jsonb_each(j.n) e WHERE e.value IS DISTINCT FROM j.o -> e.key) AS changes
                  FROM new_rows n JOIN old_rows o ON o.id = n.id,
                       LATERAL (SELECT to_jsonb(n) - skip AS n, to_jsonb(o) - skip AS o) j) d
         WHERE d.changes IS NOT NULL;
    ELSE
        INSERT INTO journal (model, record_id, action, version, changes, actor, user_id, channel, request_id)
        SELECT TG_ARGV[0], o.id, 'delete', o.version + 1,
               (SELECT coalesce(jsonb_object_agg(e.key, jsonb_build_array(e.value, NULL)), '{}')
                  FROM jsonb_each(to_jsonb(o) - skip) e WHERE e.value <> 'null'),
               actor, who, channel, request
          FROM old_rows o;
    END IF;
    RETURN NULL;
END
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
             DROP FUNCTION journal_append_only(); \
             DELETE FROM roles WHERE name = 'Auditors' AND is_system;",
        );
        crate::run(manager, &sql).await
    }
}
