//! Notifications for users, made from the change journal in the writing
//! transaction: when a client's manager or a task's assignee changes, the
//! new one is told (unless they made the change themselves).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE TABLE notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        text NOT NULL,
    model       text NOT NULL,
    record_id   uuid NOT NULL,
    journal_id  bigint NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id);

-- Which field of which model names the user to tell.
-- Live streams on every server are woken (NOTIFY strata_stream, schema).
CREATE FUNCTION notifications_from_journal() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    made bigint;
BEGIN
    INSERT INTO notifications (user_id, type, model, record_id, journal_id, body)
    SELECT (j.changes -> a.field ->> 1)::uuid, a.type, j.model, j.record_id, j.id,
           jsonb_build_object('type', a.type, 'model', j.model, 'record_id', j.record_id,
                              'field', a.field, 'by', j.user_id, 'at', j.at)
      FROM new_rows j
      JOIN (VALUES ('clients', 'assigned_manager_id', 'client.assigned'),
                   ('tasks', 'assignee_id', 'task.assigned')) AS a (model, field, type)
        ON a.model = j.model AND j.action IN ('create', 'update')
     WHERE j.changes ? a.field
       AND j.changes -> a.field ->> 1 IS NOT NULL
       AND (j.user_id IS NULL OR (j.changes -> a.field ->> 1)::uuid <> j.user_id)
       AND EXISTS (SELECT 1 FROM users u WHERE u.id = (j.changes -> a.field ->> 1)::uuid);
    GET DIAGNOSTICS made = ROW_COUNT;
    IF made > 0 THEN
        PERFORM pg_notify('strata_stream', current_schema());
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_notifications AFTER INSERT ON journal
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_from_journal();
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP TRIGGER journal_notifications ON journal; \
             DROP FUNCTION notifications_from_journal(); DROP TABLE notifications;",
        )
        .await
    }
}
