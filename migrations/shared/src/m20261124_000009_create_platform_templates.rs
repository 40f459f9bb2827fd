//! Tenant templates: a tenant's configuration (and, if asked, its records
//! as sample data) captured to provision new tenants from.

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
CREATE TABLE public.platform_templates (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    description      text NOT NULL DEFAULT '',
    source           text NOT NULL,
    include_records  boolean NOT NULL,
    -- The migrations the source had when captured.
    migrations       text[] NOT NULL,
    -- Per table: its columns and rows, as JSON.
    content          jsonb NOT NULL,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE public.platform_templates;")
            .await?;
        Ok(())
    }
}
