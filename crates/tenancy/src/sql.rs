//! The SQL helpers every tenancy module shares: statements, the schema
//! lock, and the one place that points `search_path` at a tenant schema
//! (after checking that it exists: PostgreSQL would otherwise fall through
//! to the next schema on the path).

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    FromQueryResult, Statement, TransactionTrait, Value,
};

use crate::error::Error;
use crate::slug::SchemaName;

/// A PostgreSQL statement with positional parameters.
pub fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

// Every statement sent outside an explicit transaction goes through one of
// these three: each runs in a transaction of its own, so that behind a
// transaction-pooling PgBouncer its parse, bind and execute all reach the
// same server connection (see docs/operations.md, "PgBouncer").

/// At most one row of `statement`, read in a transaction of its own.
pub async fn read_one<T: FromQueryResult>(
    db: &DatabaseConnection,
    statement: Statement,
) -> Result<Option<T>, DbErr> {
    let txn = db.begin().await?;
    let row = T::find_by_statement(statement).one(&txn).await?;
    txn.commit().await?;
    Ok(row)
}

/// Every row of `statement`, read in a transaction of its own.
pub async fn read_all<T: FromQueryResult>(
    db: &DatabaseConnection,
    statement: Statement,
) -> Result<Vec<T>, DbErr> {
    let txn = db.begin().await?;
    let rows = T::find_by_statement(statement).all(&txn).await?;
    txn.commit().await?;
    Ok(rows)
}

/// Runs `statement` in a transaction of its own.
pub async fn write(db: &DatabaseConnection, statement: Statement) -> Result<ExecResult, DbErr> {
    let txn = db.begin().await?;
    let done = txn.execute_raw(statement).await?;
    txn.commit().await?;
    Ok(done)
}

/// Runs a statement that returns rows (a read, or a write with
/// `RETURNING`) in a transaction of its own; the rows.
pub async fn rows(
    db: &DatabaseConnection,
    statement: Statement,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let txn = db.begin().await?;
    let rows = txn.query_all_raw(statement).await?;
    txn.commit().await?;
    Ok(rows)
}

/// First key of every advisory lock Strata takes on a tenant schema
/// (`"STRA"` in ASCII); the second key is `hashtext(schema name)`.
pub(crate) const SCHEMA_LOCK_CLASS: i32 = 0x5354_5241;

/// Waits for the transaction-scoped advisory lock on `schema`.
pub(crate) async fn lock_schema(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
) -> Result<(), Error> {
    txn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        [SCHEMA_LOCK_CLASS.into(), schema.as_str().into()],
    ))
    .await?;
    Ok(())
}

/// What follows the tenant schema on the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// `public` (requests: shared functions resolve).
    Public,
    /// Nothing (migrations: an unqualified name lands in the tenant's
    /// schema or fails, never in `public`).
    Nothing,
}

/// Sets `search_path` to `schema` for the rest of `txn` (`SET LOCAL`:
/// it ends with the transaction, so it never leaks to the next user of a
/// pooled connection). Fails with [`Error::SchemaMissing`] when the schema
/// does not exist.
pub(crate) async fn enter_schema(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    then: Then,
) -> Result<(), Error> {
    let path = match then {
        Then::Public => format!("{}, public", schema.quoted()),
        Then::Nothing => schema.quoted(),
    };
    // The writer, for the change journal, in the same round trip.
    let (actor, user, channel, request) = crate::writer::current().settings();
    let set = txn
        .query_one_raw(stmt(
            "SELECT set_config('search_path', $1, true), set_config('strata.actor', $3, true), \
                    set_config('strata.user', $4, true), set_config('strata.channel', $5, true), \
                    set_config('strata.request_id', $6, true) \
             FROM pg_namespace WHERE nspname = $2",
            [
                path.into(),
                schema.as_str().into(),
                actor.into(),
                user.into(),
                channel.into(),
                request.into(),
            ],
        ))
        .await?;
    if set.is_none() {
        return Err(Error::SchemaMissing(schema.clone()));
    }
    Ok(())
}
