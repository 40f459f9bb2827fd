//! The one write path of CRM records, and their reads: every statement is
//! built from a model's [`Spec`], so REST, every sync protocol and any later
//! writer store the same columns, apply the same derived fields and hit the
//! same constraints.
//!
//! Records travel in and out as JSON. Writes take a JSON array of
//! `{"id", "bv" (base version), "d" (checked fields)}` as one parameter and
//! touch many rows in one statement; reads build each record's JSON in
//! PostgreSQL. Every function runs on a connection the caller has scoped to
//! one tenant (a tenant transaction): table names are unqualified.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use serde_json::json;
use uuid::Uuid;

use crate::access::Scope;
use crate::check::Checked;
use crate::record::{Naming, Spec};
use crate::render;
use crate::validation::FieldErrors;

/// SQLSTATE the tenant schema raises when a change would leave no active
/// administrator.
pub const LAST_ADMINISTRATOR: &str = "SA001";

/// Why a write was refused by the database's constraints.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the record changed since version {given}; it is now at version {current}")]
    Stale { given: i64, current: i64 },
    #[error("invalid fields")]
    Invalid(FieldErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

pub fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// A record in a write's JSON array.
pub fn row(id: Uuid, base_version: Option<i64>, fields: &Checked) -> serde_json::Value {
    json!({ "id": id, "bv": base_version, "d": fields })
}

/// `rows` as one JSON text parameter (cast to jsonb in SQL).
fn param(rows: &[serde_json::Value]) -> Value {
    serde_json::to_string(rows)
        .expect("a JSON value always serialises")
        .into()
}

/// What a write returns per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    /// The ids written.
    Ids,
    /// The ids and each record's JSON.
    Records,
}

/// One written row: its id, its new version and, with
/// [`Returning::Records`], its JSON.
pub struct Written {
    pub id: Uuid,
    pub version: i64,
    pub record: Option<String>,
}

fn returning(spec: &Spec, what: Returning) -> String {
    match what {
        Returning::Ids => "RETURNING t.id, t.version".into(),
        Returning::Records => format!("RETURNING t.id, t.version, {}", spec.columns()),
    }
}

async fn written(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    what: Returning,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<Written>, DbErr> {
    let rows = conn.query_all_raw(stmt(sql, values)).await?;
    rows.iter()
        .map(|r| {
            Ok(Written {
                id: r.try_get_by_index(0)?,
                version: r.try_get_by_index(1)?,
                record: match what {
                    Returning::Ids => None,
                    Returning::Records => Some(render::record(spec, r, 2)?),
                },
            })
        })
        .collect()
}

/// Inserts `rows` (checked, writing the columns `cols`); an id that exists
/// already, or that belonged to a deleted record (a create replayed after
/// the delete), is skipped. Runs the model's after-insert rule on the new
/// ids. (The tombstone is looked up per row, by key: as `NOT EXISTS`, a
/// plan made while the tenant was small read every tracked record of the
/// model for each insert.)
pub async fn insert(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    rows: &[serde_json::Value],
    cols: &[&str],
    what: Returning,
) -> Result<Vec<Written>, DbErr> {
    let fields: Vec<_> = cols.iter().filter_map(|c| spec.field(c)).collect();
    let mut names: Vec<&str> = vec!["id"];
    let mut exprs: Vec<String> = vec!["(x.e->>'id')::uuid".into()];
    for f in &fields {
        names.push(f.name);
        exprs.push(format!("(x.d->>'{}')::{}", f.name, f.kind.sql()));
    }
    for d in spec.meta.derived {
        names.push(d.column);
        exprs.push(d.on_insert.to_owned());
    }
    let sql = format!(
        "INSERT INTO {table} AS t ({names}) \
         SELECT {exprs} FROM (SELECT e, e->'d' AS d FROM jsonb_array_elements($1::jsonb) e) x \
         WHERE (SELECT c.deleted FROM sync_changes c WHERE c.model = '{table}' \
                AND c.record_id = (x.e->>'id')::uuid) IS NOT TRUE \
         ON CONFLICT (id) DO NOTHING {ret}",
        table = spec.table,
        names = names.join(", "),
        exprs = exprs.join(", "),
        ret = returning(spec, what),
    );
    let out = written(conn, spec, what, &sql, vec![param(rows)]).await?;
    if let Some(after) = spec.meta.after_insert
        && !out.is_empty()
    {
        let ids: Vec<Uuid> = out.iter().map(|w| w.id).collect();
        conn.execute_raw(stmt(after, [ids.into()])).await?;
    }
    Ok(out)
}

/// Updates `rows` that are in `scope` (and, with `check_version`, still at
/// their base version): each row's fields are applied, derived fields
/// recomputed, the version bumped. Rows that would leave `scope` are not
/// written.
#[allow(clippy::too_many_arguments)] // each is one of the statement's inputs
pub async fn update(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    scope: &Scope,
    caller: Uuid,
    rows: &[serde_json::Value],
    cols: &[&str],
    check_version: bool,
    what: Returning,
) -> Result<Vec<Written>, DbErr> {
    let mut values: Vec<Value> = vec![param(rows)];
    let visible = scope.sql(spec, caller, &mut values);
    let mut sets: Vec<String> = cols
        .iter()
        .filter_map(|c| spec.field(c))
        .map(|f| {
            format!(
                "{0} = CASE WHEN x.d ? '{0}' THEN (x.d->>'{0}')::{1} ELSE t.{0} END",
                f.name,
                f.kind.sql()
            )
        })
        .collect();
    sets.extend(
        spec.meta
            .derived
            .iter()
            .map(|d| format!("{} = {}", d.column, d.on_update)),
    );
    // The version is bumped here, sparing the trigger its comparison; an
    // update with no fields still bumps it.
    sets.push("version = t.version + 1".into());
    sets.push("updated_at = now()".into());
    let version = if check_version {
        "AND t.version = x.bv"
    } else {
        ""
    };
    // A row must be in scope before the change and after it: the new
    // values are those of `x.d` where given.
    let after = if matches!(scope, Scope::All) {
        String::new()
    } else {
        let mut after_values = Vec::new();
        let cond = scope.sql(spec, caller, &mut after_values);
        let shift = values.len();
        values.extend(after_values);
        format!("AND {}", rebase(&after_row(spec, &cond), shift))
    };
    let sql = format!(
        "UPDATE {table} t SET {sets} \
         FROM (SELECT (e->>'id')::uuid AS id, (e->>'bv')::bigint AS bv, e->'d' AS d \
               FROM jsonb_array_elements($1::jsonb) e) x \
         WHERE t.id = x.id {version} AND {visible} {after} {ret}",
        table = spec.table,
        sets = sets.join(", "),
        ret = returning(spec, what),
    );
    written(conn, spec, what, &sql, values).await
}

/// `cond` (over alias `t`) evaluated on the row as the update leaves it.
fn after_row(spec: &Spec, cond: &str) -> String {
    let cols: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| f.public())
        .map(|f| {
            format!(
                "CASE WHEN x.d ? '{0}' THEN (x.d->>'{0}')::{1} ELSE t.{0} END AS {0}",
                f.name,
                f.kind.sql()
            )
        })
        .collect();
    format!(
        "EXISTS (SELECT 1 FROM (SELECT {}) t WHERE {cond})",
        cols.join(", ")
    )
}

/// Renumbers the `$n` parameters of `sql` by `shift`.
pub(crate) fn rebase(sql: &str, shift: usize) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
            let mut n = 0usize;
            while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                n = n * 10 + (d as usize - '0' as usize);
                chars.next();
            }
            out.push_str(&format!("${}", n + shift));
        } else {
            out.push(c);
        }
    }
    out
}

/// Deletes `rows` in `scope` (and, with `check_version`, at their base
/// version when one is given); the ids deleted.
pub async fn delete(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    scope: &Scope,
    caller: Uuid,
    rows: &[serde_json::Value],
    check_version: bool,
) -> Result<Vec<Uuid>, DbErr> {
    let mut values: Vec<Value> = vec![param(rows)];
    let visible = scope.sql(spec, caller, &mut values);
    let version = if check_version {
        "AND (x.bv IS NULL OR t.version = x.bv)"
    } else {
        ""
    };
    let sql = format!(
        "DELETE FROM {table} t USING \
         (SELECT (e->>'id')::uuid AS id, (e->>'bv')::bigint AS bv FROM jsonb_array_elements($1::jsonb) e) x \
         WHERE t.id = x.id {version} AND {visible} RETURNING t.id",
        table = spec.table,
    );
    let rows = conn.query_all_raw(stmt(&sql, values)).await?;
    rows.iter().map(|r| r.try_get_by_index::<Uuid>(0)).collect()
}

/// A record's JSON and whether it is in `scope`; `None` if it does not exist.
pub async fn find(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    naming: Naming<'_>,
    scope: &Scope,
    caller: Uuid,
    id: Uuid,
) -> Result<Option<(String, bool, i64)>, DbErr> {
    let mut values: Vec<Value> = Vec::new();
    let visible = scope.sql(spec, caller, &mut values);
    values.push(id.into());
    let sql = format!(
        "SELECT {cols}, coalesce({visible}, false), t.version FROM {table} t WHERE t.id = ${n}",
        cols = spec.columns(),
        table = naming.table(spec.table),
        n = values.len()
    );
    let Some(row) = conn.query_one_raw(stmt(&sql, values)).await? else {
        return Ok(None);
    };
    let w = render::width(spec);
    Ok(Some((
        render::record(spec, &row, 0)?,
        row.try_get_by_index(w)?,
        row.try_get_by_index(w + 1)?,
    )))
}

/// The record the caller may read, as JSON: 404 when it does not exist or
/// lies outside `scope` (the caller cannot tell the two apart).
pub async fn get(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    naming: Naming<'_>,
    scope: &Scope,
    caller: Uuid,
    id: Uuid,
) -> Result<(String, i64), StoreError> {
    match find(conn, spec, naming, scope, caller, id).await? {
        Some((json, true, version)) => Ok((json, version)),
        _ => Err(StoreError::NotFound(spec.meta.noun)),
    }
}

/// Why a single-record write at `given` version did not apply: gone, out
/// of the writer's scope, or stale.
pub async fn explain_miss(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    scope: &Scope,
    caller: Uuid,
    id: Uuid,
    given: Option<i64>,
) -> StoreError {
    match find(conn, spec, Naming::Path, scope, caller, id).await {
        Ok(None) | Ok(Some((_, false, _))) => StoreError::NotFound(spec.meta.noun),
        Ok(Some((_, true, current))) => match given {
            Some(given) if given != current => StoreError::Stale { given, current },
            _ => StoreError::Invalid(out_of_scope()),
        },
        Err(e) => e.into(),
    }
}

/// The error of a write that would move a record outside the writer's rows.
pub fn out_of_scope() -> FieldErrors {
    let mut e = FieldErrors::new();
    e.add("body", OUTSIDE_SCOPE);
    e
}

/// The message of a write outside the rows a caller may write.
pub const OUTSIDE_SCOPE: &str = "the record would be outside the rows you may write";

/// The SQLSTATE of a database error, if it came from the server.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) | DbErr::Conn(e) => e,
        _ => return None,
    };
    match runtime {
        sea_orm::RuntimeErr::SqlxError(e) => match e.as_ref() {
            sea_orm::sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `err` means PostgreSQL was out of reach (connection lost or
/// refused, server shutting down or starting, no connection to be had) as
/// opposed to a statement failing: the request may succeed if retried.
pub fn is_connection_loss(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(e) | DbErr::Query(e) => e,
        _ => return false,
    };
    match runtime {
        sea_orm::RuntimeErr::SqlxError(e) => match e.as_ref() {
            Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
            Sqlx::Database(db) => db.code().is_some_and(|c| {
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
            }),
            _ => false,
        },
        _ => false,
    }
}

/// Maps a constraint violation of a write on `spec` to what the writer is
/// told: a foreign key to the referencing field, a unique violation or a
/// record still referenced to a conflict, a CHECK to an invalid body, the
/// last administrator to a conflict. Anything else stays a database error.
pub fn refused(spec: &Spec, err: DbErr) -> StoreError {
    let state = sqlstate(&err);
    let message = err.to_string();
    let one = |field: &str, msg: &str| {
        let mut e = FieldErrors::new();
        e.add(field, msg);
        StoreError::Invalid(e)
    };
    match state.as_deref() {
        Some("23503") if message.contains("still referenced") => StoreError::Conflict(format!(
            "this {} is still referenced by other records",
            spec.meta.noun
        )),
        Some("23503") => {
            // Constraint names are `<table>_<column>_fkey`.
            let field = message
                .split('"')
                .find(|s| s.ends_with("_fkey"))
                .and_then(|c| c.strip_prefix(&format!("{}_", spec.table)))
                .and_then(|c| c.strip_suffix("_fkey"))
                .unwrap_or("id");
            one(field, "refers to a record that does not exist")
        }
        Some("23505") => StoreError::Conflict(format!(
            "a {} with these values already exists",
            spec.meta.noun
        )),
        Some("23514" | "22001" | "22007" | "22008") => {
            one("body", "a value is out of range for this record")
        }
        Some(LAST_ADMINISTRATOR) => StoreError::Conflict(LAST_ADMINISTRATOR_MESSAGE.into()),
        _ => StoreError::Database(err),
    }
}

pub const LAST_ADMINISTRATOR_MESSAGE: &str =
    "the last administrator cannot be removed, disabled or demoted";

impl StoreError {
    /// The per-record messages a sync client gets for this refusal.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Invalid(errors) => errors
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect(),
            Self::Database(_) => vec!["the record could not be written".into()],
            other => vec![other.to_string()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebases_parameters() {
        assert_eq!(rebase("a = $1 AND b = $12", 3), "a = $4 AND b = $15");
        assert_eq!(rebase("x->>'$' = $2", 1), "x->>'$' = $3");
    }
}
