//! The tenants that have webhook endpoints, kept by their schemas'
//! triggers: operators read delivery queues across the platform from
//! these schemas only, not from every tenant.

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
CREATE TABLE public.event_tenants (
    schema_name  text PRIMARY KEY
                 REFERENCES public.tenants (schema_name) ON DELETE CASCADE,
    since        timestamptz NOT NULL DEFAULT now()
);

-- Called by tenant triggers when their endpoints change.
CREATE FUNCTION public.note_event_tenant(schema text, has_endpoints boolean) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO public.event_tenants (schema_name)
    SELECT schema WHERE has_endpoints
    ON CONFLICT (schema_name) DO NOTHING;
    DELETE FROM public.event_tenants WHERE schema_name = schema AND NOT has_endpoints;
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
                "DROP FUNCTION public.note_event_tenant(text, boolean); \
                 DROP TABLE public.event_tenants;",
            )
            .await?;
        Ok(())
    }
}
