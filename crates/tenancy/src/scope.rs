//! Tenant-scoped transactions: the only way to reach a tenant's tables.

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use crate::error::Error;
use crate::registry::Tenant;
use crate::slug::SchemaName;
use crate::sql::{Then, enter_schema};

/// A transaction whose `search_path` is the tenant's schema, then `public`.
///
/// `search_path` is set with `SET LOCAL` semantics, so it ends with the
/// transaction and never leaks to the next user of the pooled connection
/// (nor across PgBouncer's transaction pooling). Starting one checks that the
/// schema exists: PostgreSQL would otherwise fall through to `public`.
pub struct TenantTx {
    txn: DatabaseTransaction,
    schema: SchemaName,
}

impl TenantTx {
    pub async fn begin(db: &DatabaseConnection, tenant: &Tenant) -> Result<Self, Error> {
        let txn = db.begin().await?;
        let schema = tenant.schema().clone();
        if let Err(e) = enter_schema(&txn, &schema, Then::Public).await {
            txn.rollback().await?;
            return Err(e);
        }
        Ok(Self { txn, schema })
    }

    /// A transaction whose `search_path` the caller has set to `schema`.
    pub(crate) fn entered(txn: DatabaseTransaction, schema: SchemaName) -> Self {
        Self { txn, schema }
    }

    /// The connection to run the tenant's queries on.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for TenantTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}
