//! Signals that a tenant schema has event deliveries due, so dispatchers
//! find work across thousands of schemas without scanning them. A tenant's
//! trigger appends a row (no row is ever updated, so concurrent writers
//! never wait on each other); a dispatcher takes due rows with
//! `FOR UPDATE SKIP LOCKED`, so two never take the same.

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
CREATE TABLE public.event_signals (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name  text NOT NULL,
    due_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_signals_due_idx ON public.event_signals (due_at);

-- Deliveries paused on the whole platform (by an operator, for
-- maintenance): dispatchers take no signals, which accumulate meanwhile.
CREATE TABLE public.event_control (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    paused     boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.event_control DEFAULT VALUES;

-- Called by tenant triggers (which reference public only through it).
CREATE FUNCTION public.signal_events(schema text, due timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO public.event_signals (schema_name, due_at) VALUES (schema, due);
    SELECT pg_notify('strata_events', schema);
$$;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP FUNCTION public.signal_events(text, timestamptz); \
                 DROP TABLE public.event_signals, public.event_control;",
            )
            .await?;
        Ok(())
    }
}
