//! Every tenant schema's applied migrations, in one shared table, written
//! in the transaction that applies them. Reading where thousands of tenants
//! stand is then one indexed read instead of opening every schema's own
//! `tenant_migrations` table (which stays, as the record inside a schema).

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
CREATE TABLE public.tenant_schema_migrations (
    schema_name text NOT NULL,
    version text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, version)
);
DO $$
DECLARE s text;
BEGIN
    FOR s IN SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
             WHERE c.relname = 'tenant_migrations' AND c.relkind = 'r'
    LOOP
        EXECUTE format(
            'INSERT INTO public.tenant_schema_migrations (schema_name, version, applied_at) '
            'SELECT %L, version, applied_at FROM %I.tenant_migrations', s, s);
    END LOOP;
END $$;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE public.tenant_schema_migrations")
            .await?;
        Ok(())
    }
}
