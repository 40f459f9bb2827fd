//! Reading rows of a tenant's own tables (sync settings, logs) in one
//! tenant transaction.

use sea_orm::{FromQueryResult, Value};
use tenancy::{TenantTx, stmt};

use crate::error::ApiError;

/// Every row `sql` returns, read in one tenant transaction.
pub async fn read_all<T: FromQueryResult>(
    state: &crate::state::AppState,
    tenant: &tenancy::Tenant,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<T>, ApiError> {
    let tx = TenantTx::begin(&state.db, tenant).await?;
    let rows = T::find_by_statement(stmt(sql, values))
        .all(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(rows)
}
