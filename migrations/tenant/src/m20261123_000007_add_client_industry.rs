//! Clients gain an industry (free text, e.g. "Logistics"), to segment them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "ALTER TABLE clients ADD COLUMN industry text CHECK (length(industry) <= 100);",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, "ALTER TABLE clients DROP COLUMN industry;").await
    }
}
