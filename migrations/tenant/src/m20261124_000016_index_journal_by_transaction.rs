//! The live stream reads the journal in transaction order from a position
//! (an entry's id alone is taken in one order and committed in another):
//! a BRIN index on the transaction id, as a bigint (BRIN has no operator
//! class for `xid8`), which costs writes next to nothing, as entries
//! arrive in transaction order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "CREATE INDEX journal_txid_idx ON journal USING brin (((txid::text)::bigint));",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, "DROP INDEX journal_txid_idx;").await
    }
}
