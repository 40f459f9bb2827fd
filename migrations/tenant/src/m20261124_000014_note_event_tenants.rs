//! The tenant tells `public.event_tenants` whether it has webhook
//! endpoints (so it has deliveries operators may want to see), on every
//! change of its endpoints and once now; dead letters get an index of
//! their own, so counting them reads only them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE FUNCTION note_event_tenant() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM public.note_event_tenant(current_schema(),
                                     EXISTS (SELECT 1 FROM webhook_endpoints));
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_noted AFTER INSERT OR DELETE ON webhook_endpoints
    FOR EACH STATEMENT EXECUTE FUNCTION note_event_tenant();
SELECT public.note_event_tenant(current_schema(), EXISTS (SELECT 1 FROM webhook_endpoints));
-- Dead letters, counted for operators without reading every delivery.
CREATE INDEX webhook_deliveries_failed_idx ON webhook_deliveries (id) WHERE status = 'FAILED';
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP INDEX webhook_deliveries_failed_idx; \
             DROP TRIGGER webhook_endpoints_noted ON webhook_endpoints; \
             DROP FUNCTION note_event_tenant(); \
             SELECT public.note_event_tenant(current_schema(), false);",
        )
        .await
    }
}
