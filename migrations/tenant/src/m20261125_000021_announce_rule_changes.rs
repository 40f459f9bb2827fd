//! Servers keep each tenant's rules in memory: the custom field
//! definitions (`field_sets`) and what each set of roles may sync
//! (`roles`, `sync_permissions`, `sync_filters`). Every change to them is
//! announced with `NOTIFY strata_rules, '<schema>'` when its transaction
//! commits, whoever wrote, and servers drop that tenant's rules on it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose rows are the tenant's rules.
const RULES: &[&str] = &["field_sets", "roles", "sync_permissions", "sync_filters"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::from(
            "CREATE FUNCTION notify_rules() RETURNS trigger \
             LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ \
             BEGIN PERFORM pg_notify('strata_rules', TG_TABLE_SCHEMA); RETURN NULL; END $$;",
        );
        for table in RULES {
            sql.push_str(&format!(
                "CREATE TRIGGER {table}_notify_rules \
                 AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION notify_rules();"
            ));
        }
        crate::run(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for table in RULES {
            sql.push_str(&format!("DROP TRIGGER {table}_notify_rules ON {table};"));
        }
        sql.push_str("DROP FUNCTION notify_rules();");
        crate::run(manager, &sql).await
    }
}
