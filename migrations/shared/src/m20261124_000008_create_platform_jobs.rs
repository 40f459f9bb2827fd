//! Durable platform jobs and the field sets operators distribute.
//!
//! A job is one row and one item per target tenant. A worker claims an item
//! with `FOR UPDATE SKIP LOCKED` and holds that row lock for the whole of
//! the item's tenant transaction, which also marks the item done: the work
//! and its record commit together or not at all, so a killed worker leaves
//! the item pending for the next one, never half done or done twice.
//! `concurrency` bounds how many of a job's items run at once (advisory
//! slots); a failed attempt waits `available_at` before the next.

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
CREATE TABLE public.platform_jobs (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    -- What the job does, whole: a distribution holds the field set as
    -- distributed, so a later edit of the set does not change the job.
    params        jsonb NOT NULL,
    summary       text NOT NULL DEFAULT '',
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'cancelled', 'finished')),
    concurrency   integer NOT NULL DEFAULT 4 CHECK (concurrency BETWEEN 1 AND 64),
    max_attempts  integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX platform_jobs_running ON public.platform_jobs (created_at) WHERE status = 'running';

CREATE TABLE public.platform_job_items (
    job_id        uuid NOT NULL REFERENCES public.platform_jobs (id) ON DELETE CASCADE,
    tenant        text NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
    attempts      integer NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL DEFAULT now(),
    error         text,
    result        jsonb,
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (job_id, tenant)
);
CREATE INDEX platform_job_items_pending ON public.platform_job_items (job_id, available_at)
    WHERE status = 'pending';

CREATE TABLE public.platform_field_sets (
    id          uuid PRIMARY KEY,
    model       text NOT NULL CHECK (model IN ('clients', 'contacts', 'tasks')),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    label       text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    fields      jsonb NOT NULL CHECK (jsonb_typeof(fields) = 'array'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model, name)
);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE public.platform_field_sets; DROP TABLE public.platform_job_items; \
                 DROP TABLE public.platform_jobs;",
            )
            .await?;
        Ok(())
    }
}
