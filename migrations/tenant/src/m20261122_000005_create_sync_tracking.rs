//! Change tracking for sync: every write to a synced table, from any writer,
//! bumps the row's version and records the change (with the writing
//! transaction's id) in `sync_changes`; deletes leave a tombstone there.
//! Also the per-tenant sync permission matrix, row filters, client
//! mutation ids, per-user sync state and the sync log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Tables that sync, with the name clients use for each.
/// Tables that sync, with the name clients use for each and the columns
/// whose changes are not synced.
const SYNCED: &[(&str, &str, &str)] = &[
    ("branches", "branches", ""),
    ("users", "users", "'last_login_at'"),
    ("clients", "clients", ""),
    ("contacts", "contacts", ""),
    ("tasks", "tasks", ""),
    ("notes", "notes", ""),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            r#"
-- One row per synced record: its latest version, whether it is deleted,
-- and the transaction ids that created it and last changed it. A pull
-- returns rows whose txid lies between its cursor and the transaction
-- horizon, so a change is never skipped however transactions commit.
CREATE TABLE sync_changes (
    model         text NOT NULL,
    record_id     uuid NOT NULL,
    version       bigint NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    created_txid  xid8 NOT NULL,
    txid          xid8 NOT NULL,
    -- Field name -> the version at which it last changed (absent: 1),
    -- for field-level merges of concurrent edits.
    field_versions jsonb NOT NULL DEFAULT '{}',
    changed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, record_id)
);
CREATE INDEX sync_changes_txid_idx ON sync_changes (model, txid, record_id);
CREATE INDEX sync_changes_tombstones_idx ON sync_changes (changed_at) WHERE deleted;

-- The oldest cursor still served: raised when tombstones are purged.
CREATE TABLE sync_state (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    purged_before  xid8 NOT NULL DEFAULT '0'::xid8
);
INSERT INTO sync_state DEFAULT VALUES;

-- The trigger functions live in the public schema (shared migration
-- create_sync_functions): one compiled copy serves every tenant.
"#,
        );
        for (table, model, unsynced) in SYNCED {
            sql.push_str(&format!(
                "CREATE TRIGGER {table}_sync_version BEFORE UPDATE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION public.sync_bump_version({unsynced});\n\
                 CREATE TRIGGER {table}_sync_insert AFTER INSERT ON {table} \
                 REFERENCING NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION public.sync_track_insert('{model}');\n\
                 CREATE TRIGGER {table}_sync_update AFTER UPDATE ON {table} \
                 REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION public.sync_track_update('{model}');\n\
                 CREATE TRIGGER {table}_sync_delete AFTER DELETE ON {table} \
                 REFERENCING OLD TABLE AS old_rows \
                 FOR EACH STATEMENT EXECUTE FUNCTION public.sync_track_delete('{model}');\n\
                 INSERT INTO sync_changes (model, record_id, version, created_txid, txid) \
                 SELECT '{model}', id, version, pg_current_xact_id(), pg_current_xact_id() FROM {table};\n"
            ));
        }
        sql.push_str(
            r#"
-- Who may push or pull which model: roles x models.
CREATE TABLE sync_permissions (
    role_id   uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    model     text NOT NULL,
    can_pull  boolean NOT NULL DEFAULT false,
    can_push  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (role_id, model)
);
INSERT INTO sync_permissions (role_id, model, can_pull, can_push)
SELECT r.id, m.model, true,
       CASE
         WHEN r.name IN ('Analysts', 'Read Only') THEN false
         WHEN m.model = 'users' THEN r.name = 'Administrators'
         WHEN m.model = 'branches' THEN r.name IN ('Administrators', 'Managers')
         ELSE true
       END
FROM roles r
CROSS JOIN (VALUES ('branches'), ('users'), ('clients'), ('contacts'), ('tasks'), ('notes')) AS m (model);

-- Rows a role may see of a model: every filter of the role must hold.
-- A value of '$user' stands for the caller's id.
CREATE TABLE sync_filters (
    id          uuid PRIMARY KEY,
    role_id     uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    model       text NOT NULL,
    field       text NOT NULL,
    operator    text NOT NULL CHECK (operator IN ('eq', 'ne', 'in', 'is_null', 'not_null')),
    value       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_filters_role_model_idx ON sync_filters (role_id, model);

-- The last mutation id applied per client, written in the same
-- transaction as the mutations, so a retried batch applies once.
CREATE TABLE sync_clients (
    client_id         text PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 200),
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_mutation_id  bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Per user and model: when they last synced and how much.
CREATE TABLE sync_user_state (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model          text NOT NULL,
    last_pull_at   timestamptz,
    last_push_at   timestamptz,
    pulled         bigint NOT NULL DEFAULT 0,
    pushed         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, model)
);

-- Timestamps handed to clients of the timestamp-based protocol, each
-- standing for the exact cursor it was issued with.
CREATE TABLE sync_checkpoints (
    user_id    uuid NOT NULL,
    model      text NOT NULL,
    issued_at  timestamptz NOT NULL,
    cursor     text NOT NULL,
    complete   boolean NOT NULL,
    PRIMARY KEY (user_id, model, issued_at)
);

-- Every push and pull.
CREATE TABLE sync_log (
    id           uuid PRIMARY KEY,
    user_id      uuid,
    client_id    text,
    kind         text NOT NULL CHECK (kind IN ('push', 'pull')),
    models       text[] NOT NULL,
    counts       jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
    duration_ms  double precision NOT NULL,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_log_created_at_idx ON sync_log (created_at DESC);
CREATE INDEX sync_log_user_idx ON sync_log (user_id, created_at DESC);
"#,
        );
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for (table, _, _) in SYNCED {
            sql.push_str(&format!(
                "DROP TRIGGER {table}_sync_version ON {table}; \
                 DROP TRIGGER {table}_sync_insert ON {table}; \
                 DROP TRIGGER {table}_sync_update ON {table}; \
                 DROP TRIGGER {table}_sync_delete ON {table};\n"
            ));
        }
        sql.push_str(
            "DROP TABLE sync_log, sync_checkpoints, sync_user_state, sync_clients, sync_filters, sync_permissions, \
             sync_state, sync_changes;",
        );
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }
}
