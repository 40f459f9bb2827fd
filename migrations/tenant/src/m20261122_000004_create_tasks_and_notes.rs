//! Tasks (work items, usually about a client) and notes on clients or tasks.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE TABLE tasks (
    id            uuid PRIMARY KEY,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    description   text,
    status        text NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    priority      text NOT NULL DEFAULT 'normal'
                  CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    due_date      date,
    assignee_id   uuid REFERENCES users (id) ON DELETE SET NULL,
    client_id     uuid REFERENCES clients (id) ON DELETE CASCADE,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    completed_at  timestamptz,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_assignee_id_idx ON tasks (assignee_id);
CREATE INDEX tasks_client_id_idx ON tasks (client_id);
CREATE INDEX tasks_status_due_date_idx ON tasks (status, due_date);

CREATE TABLE notes (
    id          uuid PRIMARY KEY,
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    client_id   uuid REFERENCES clients (id) ON DELETE CASCADE,
    task_id     uuid REFERENCES tasks (id) ON DELETE CASCADE,
    author_id   uuid REFERENCES users (id) ON DELETE SET NULL,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((client_id IS NULL) <> (task_id IS NULL))
);
CREATE INDEX notes_client_id_idx ON notes (client_id);
CREATE INDEX notes_task_id_idx ON notes (task_id);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, "DROP TABLE notes; DROP TABLE tasks;").await
    }
}
