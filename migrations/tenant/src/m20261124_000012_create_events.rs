//! Events and webhooks. Typed events (`client.created`,
//! `task.status.updated`, …) are made from the change journal by a trigger
//! on its inserts, in the writing transaction, so an event exists if and
//! only if its change committed; each event gets one delivery per active
//! webhook endpoint subscribed to its type, and the schema is signalled to
//! the dispatchers (`public.signal_events`). Events nobody subscribes to
//! are not made, so a tenant without endpoints pays one cheap check per
//! journaling statement.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Models with the singular used in event type names.
const MODELS: &[(&str, &str)] = &[
    ("branches", "branch"),
    ("users", "user"),
    ("clients", "client"),
    ("contacts", "contact"),
    ("tasks", "task"),
    ("notes", "note"),
];

/// Field-level event types tracked from the start.
const FIELDS: &[(&str, &str, &str)] = &[
    ("clients", "client", "assigned_manager_id"),
    ("clients", "client", "status"),
    ("tasks", "task", "status"),
    ("tasks", "task", "assignee_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut types = Vec::new();
        for (model, one) in MODELS {
            for (action, past) in [
                ("create", "created"),
                ("update", "updated"),
                ("delete", "deleted"),
            ] {
                types.push(format!("('{one}.{past}', '{model}', '{action}', NULL)"));
            }
        }
        for (model, one, field) in FIELDS {
            types.push(format!(
                "('{one}.{field}.updated', '{model}', 'update', '{field}')"
            ));
        }
        let sql = format!(
            r#"
-- Which changes are events: a model's creates, updates or deletes, or the
-- updates of one field.
CREATE TABLE event_types (
    name     text PRIMARY KEY,
    model    text NOT NULL,
    action   text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    field    text,
    enabled  boolean NOT NULL DEFAULT true
);
INSERT INTO event_types (name, model, action, field) VALUES {types};

CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type        text NOT NULL,
    journal_id  bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL
);
CREATE INDEX events_at_idx ON events USING brin (at);

-- Deliveries paused by the tenant's administrators: events and deliveries
-- are still made, and go out on resume.
CREATE TABLE event_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    paused     boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO event_state DEFAULT VALUES;

CREATE TABLE webhook_endpoints (
    id           uuid PRIMARY KEY,
    url          text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    event_types  text[] NOT NULL,
    secret       text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One per event and subscribed endpoint. PENDING until claimed;
-- PROCESSING while a dispatcher holds it (until locked_until, after which
-- another may take it: the holder died); COMPLETED on a 2xx answer;
-- PENDING again with a later next_at after a failure, FAILED (the dead
-- letter) when attempts run out.
CREATE TABLE webhook_deliveries (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id    uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status         text NOT NULL DEFAULT 'PENDING'
                   CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED')),
    attempts       integer NOT NULL DEFAULT 0,
    next_at        timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz,
    response_code  integer,
    latency_ms     double precision,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_at)
    WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

CREATE FUNCTION events_from_journal() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    made bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE active) THEN
        RETURN NULL;
    END IF;
    WITH made_events AS (
        INSERT INTO events (type, journal_id, at, payload)
        SELECT t.name, j.id, j.at,
               jsonb_build_object('type', t.name, 'model', j.model, 'record_id', j.record_id,
                                  'action', j.action, 'version', j.version, 'changes', j.changes,
                                  'actor', j.actor, 'user_id', j.user_id, 'channel', j.channel,
                                  'request_id', j.request_id, 'at', j.at, 'journal_id', j.id)
          FROM new_rows j
          JOIN event_types t ON t.enabled AND t.model = j.model AND t.action = j.action
                            AND (t.field IS NULL OR j.changes ? t.field)
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints w
                        WHERE w.active AND (t.name = ANY (w.event_types) OR '*' = ANY (w.event_types)))
         ORDER BY j.id, t.name
        RETURNING id, type)
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT e.id, w.id
      FROM made_events e
      JOIN webhook_endpoints w ON w.active AND (e.type = ANY (w.event_types) OR '*' = ANY (w.event_types))
     ORDER BY e.id;
    GET DIAGNOSTICS made = ROW_COUNT;
    IF made > 0 THEN
        PERFORM public.signal_events(current_schema(), now());
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_events AFTER INSERT ON journal
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION events_from_journal();
"#,
            types = types.join(",\n    ")
        );
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP TRIGGER journal_events ON journal; DROP FUNCTION events_from_journal(); \
             DROP TABLE webhook_deliveries, webhook_endpoints, event_state, events, event_types;",
        )
        .await
    }
}
