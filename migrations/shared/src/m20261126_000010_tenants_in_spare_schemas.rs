//! A tenant made from a spare schema keeps the spare's name
//! (`tenant_<32 hex digits>`): taking a spare then registers it instead of
//! renaming it, which would mean altering every function in it.

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
ALTER TABLE public.tenants DROP CONSTRAINT tenants_schema_name_check;
ALTER TABLE public.tenants ADD CONSTRAINT tenants_schema_name_check
    CHECK (schema_name ~ '^t_[a-z][a-z0-9_]{2,39}$' OR schema_name ~ '^tenant_[0-9a-f]{32}$');
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
ALTER TABLE public.tenants DROP CONSTRAINT tenants_schema_name_check;
ALTER TABLE public.tenants ADD CONSTRAINT tenants_schema_name_check
    CHECK (schema_name ~ '^t_[a-z][a-z0-9_]{2,39}$');
"#,
            )
            .await?;
        Ok(())
    }
}
