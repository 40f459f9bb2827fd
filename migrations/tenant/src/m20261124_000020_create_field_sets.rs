//! Custom fields: clients, contacts and tasks carry their values in one
//! `custom` object, checked against the definitions of the tenant's field
//! sets (`field_sets.fields`, a JSON array of definitions).
//!
//! A field set that came from the platform remembers where from (`origin`)
//! and the definitions last distributed to it (`base`, `base_version`): a
//! merge compares the tenant's copy and the platform's new version with
//! that common ancestor. `revision` counts every write of the set.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables with a `custom` object.
const WITH_CUSTOM: &[&str] = &["clients", "contacts", "tasks"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            "CREATE TABLE field_sets (
                id uuid PRIMARY KEY,
                model text NOT NULL CHECK (model IN ('clients', 'contacts', 'tasks')),
                name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                label text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
                fields jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(fields) = 'array'),
                revision bigint NOT NULL DEFAULT 1,
                origin uuid,
                base jsonb,
                base_version integer,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (model, name)
            );
            CREATE UNIQUE INDEX field_sets_origin ON field_sets (origin) WHERE origin IS NOT NULL;\n",
        );
        for table in WITH_CUSTOM {
            sql.push_str(&format!(
                "ALTER TABLE {table} ADD COLUMN custom jsonb NOT NULL DEFAULT '{{}}' \
                   CHECK (jsonb_typeof(custom) = 'object' AND pg_column_size(custom) <= 65536);
                 SELECT journal_install('{table}', '{table}', ARRAY[]::text[]);\n"
            ));
        }
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from("DROP TABLE field_sets;\n");
        for table in WITH_CUSTOM {
            sql.push_str(&format!(
                "ALTER TABLE {table} DROP COLUMN custom;
                 SELECT journal_install('{table}', '{table}', ARRAY[]::text[]);\n"
            ));
        }
        crate::run(manager, &sql).await
    }
}
