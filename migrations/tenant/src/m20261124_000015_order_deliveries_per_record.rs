//! Deliveries of one record's events to one endpoint go out in order: each
//! delivery carries its record, and a dispatcher claims a delivery only
//! when no earlier one of the same record and endpoint is still waiting or
//! in flight (a FAILED one, the dead letter, no longer holds the rest).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
ALTER TABLE webhook_deliveries ADD COLUMN record_id uuid;
UPDATE webhook_deliveries d SET record_id = (e.payload->>'record_id')::uuid
  FROM events e WHERE e.id = d.event_id;
CREATE INDEX webhook_deliveries_record_idx ON webhook_deliveries (endpoint_id, record_id, id)
    WHERE status IN ('PENDING', 'PROCESSING');

CREATE OR REPLACE FUNCTION events_from_journal() RETURNS trigger
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
        RETURNING id, type, (payload->>'record_id')::uuid AS record_id)
    INSERT INTO webhook_deliveries (event_id, endpoint_id, record_id)
    SELECT e.id, w.id, e.record_id
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
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP INDEX webhook_deliveries_record_idx; \
             ALTER TABLE webhook_deliveries DROP COLUMN record_id;",
        )
        .await
    }
}
