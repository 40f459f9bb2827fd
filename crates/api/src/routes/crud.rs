//! The SQL every CRM resource shares: keyset pagination, get, insert,
//! versioned update and delete, always inside a tenant transaction, and
//! the mapping of constraint violations to field errors.

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::FieldErrors;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use serde::{Deserialize, Serialize};
use tenancy::{TenantTx, stmt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// A tenant table served as a resource.
pub struct Table {
    /// Table name (in the tenant's schema).
    pub name: &'static str,
    /// What the API calls one record, for error messages.
    pub noun: &'static str,
    /// The SELECT list of the resource's public fields.
    pub columns: &'static str,
    /// Orderings accepted by `order=`, with the SQL type of each column.
    pub sorts: &'static [(&'static str, &'static str)],
}

/// A page of records and the cursor of the next page, if any.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The paging part of a list query.
pub struct PageParams<'a> {
    pub limit: Option<u32>,
    pub cursor: Option<&'a str>,
    pub order: Option<&'a str>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// The ordering the cursor belongs to.
    o: String,
    /// The sort value of the last row, as text.
    v: Option<String>,
    /// The id of the last row.
    i: Uuid,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// A WHERE condition with its parameters; `$?` stands for the next one.
pub struct Filter {
    pub sql: String,
    pub values: Vec<Value>,
}

impl Filter {
    pub fn eq(column: &str, value: impl Into<Value>) -> Self {
        Self {
            sql: format!("{column} = $?"),
            values: vec![value.into()],
        }
    }

    /// Case-insensitive substring match; `%`, `_` and `\\` in `needle` match
    /// themselves.
    pub fn ilike(column: &str, needle: &str) -> Self {
        let escaped = needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        Self {
            sql: format!("{column} ILIKE $?"),
            values: vec![format!("%{escaped}%").into()],
        }
    }
}

/// Replaces each `$?` in `sql` with `$n`, counting on from `*n`.
fn number(sql: &str, n: &mut usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(i) = rest.find("$?") {
        out.push_str(&rest[..i]);
        *n += 1;
        out.push_str(&format!("${n}"));
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

/// Lists `table` with `filters`, ordered and paged by keyset.
pub async fn list<T>(
    tx: &TenantTx,
    table: &Table,
    filters: Vec<Filter>,
    page: PageParams<'_>,
) -> Result<Page<T>, ApiError>
where
    T: FromQueryResult + Serialize + HasKey,
{
    let mut errors = FieldErrors::new();
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.add("limit", format!("must be 1 to {MAX_LIMIT}"));
    }
    let order = page.order.unwrap_or("created_at");
    let (desc, column) = match order.strip_prefix('-') {
        Some(c) => (true, c),
        None => (false, order),
    };
    let sort = table.sorts.iter().find(|(c, _)| *c == column);
    if sort.is_none() {
        let accepted: Vec<&str> = table.sorts.iter().map(|(c, _)| *c).collect();
        errors.add(
            "order",
            format!(
                "must be one of {} (prefix - for descending)",
                accepted.join(", ")
            ),
        );
    }
    let cursor = match page.cursor {
        None => None,
        Some(raw) => match URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
        {
            Some(c) if c.o == order => Some(c),
            Some(_) => {
                errors.add("cursor", "belongs to another ordering");
                None
            }
            None => {
                errors.add("cursor", "is not a cursor this server issued");
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let (column, ty) = sort.copied().unwrap_or(("created_at", "timestamptz"));

    let mut n = 0;
    let mut values = Vec::new();
    let mut conditions = Vec::new();
    for f in filters {
        conditions.push(number(&f.sql, &mut n));
        values.extend(f.values);
    }
    if let Some(c) = cursor {
        let cmp = if desc { "<" } else { ">" };
        // NULL sort values come last ascending, first descending.
        conditions.push(match c.v {
            Some(v) => {
                values.push(v.into());
                values.push(c.i.into());
                let (a, b) = (n + 1, n + 2);
                n += 2;
                if desc {
                    format!("(({column}, id) {cmp} (${a}::{ty}, ${b}) OR {column} IS NULL)")
                } else {
                    format!("({column}, id) {cmp} (${a}::{ty}, ${b})")
                }
            }
            None => {
                values.push(c.i.into());
                n += 1;
                format!("({column} IS NULL AND id {cmp} ${n})")
            }
        });
    }
    let dir = if desc { "DESC" } else { "ASC" };
    let nulls = if desc { "NULLS FIRST" } else { "NULLS LAST" };
    let where_ = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    values.push(i64::from(limit + 1).into());
    let sql = format!(
        "SELECT {cols}, {column}::text AS sort_key FROM {table} {where_} \
         ORDER BY {column} {dir} {nulls}, id {dir} LIMIT ${lim}",
        cols = table.columns,
        table = table.name,
        lim = n + 1,
    );
    let rows = tx.conn().query_all_raw(stmt(&sql, values)).await?;
    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        let item = T::from_query_result(row, "")?;
        last = Some((row.try_get::<Option<String>>("", "sort_key")?, item.key()));
        items.push(item);
    }
    let next_cursor = if rows.len() > limit as usize {
        last.map(|(v, i)| {
            let c = Cursor {
                o: order.to_owned(),
                v,
                i,
            };
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Records with an id and a version.
pub trait HasKey {
    fn key(&self) -> Uuid;
    fn version(&self) -> i64;
}

/// Every row `sql` returns, read in one tenant transaction.
pub async fn read_all<T: FromQueryResult>(
    state: &crate::startup::AppState,
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

/// One record by id.
pub async fn get<T: FromQueryResult>(
    tx: &TenantTx,
    table: &Table,
    id: Uuid,
) -> Result<T, ApiError> {
    T::find_by_statement(stmt(
        &format!("SELECT {} FROM {} WHERE id = $1", table.columns, table.name),
        vec![id.into()],
    ))
    .one(tx.conn())
    .await?
    .ok_or(ApiError::NotFound(table.noun))
}

/// Inserts a record with `fields` (a new id is minted unless given).
pub async fn insert<T: FromQueryResult>(
    tx: &TenantTx,
    table: &Table,
    mut fields: Vec<(&'static str, Value)>,
) -> Result<T, ApiError> {
    if !fields.iter().any(|(c, _)| *c == "id") {
        fields.push(("id", Uuid::now_v7().into()));
    }
    let cols: Vec<&str> = fields.iter().map(|(c, _)| *c).collect();
    let params: Vec<String> = (1..=fields.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
        table.name,
        cols.join(", "),
        params.join(", "),
        table.columns
    );
    let values: Vec<_> = fields.into_iter().map(|(_, v)| v).collect();
    T::find_by_statement(stmt(&sql, values))
        .one(tx.conn())
        .await
        .map_err(|e| constraint_error(table, e))?
        .ok_or_else(|| ApiError::Internal("insert returned no row".into()))
}

/// Applies `fields` to record `id` if it is still at `version`; bumps the
/// version and `updated_at`.
pub async fn update<T: FromQueryResult>(
    tx: &TenantTx,
    table: &Table,
    id: Uuid,
    version: i64,
    fields: Vec<(&'static str, Value)>,
) -> Result<T, ApiError> {
    let mut sets: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = ${}", i + 3))
        .collect();
    sets.push("version = version + 1".into());
    sets.push("updated_at = now()".into());
    let sql = format!(
        "UPDATE {} SET {} WHERE id = $1 AND version = $2 RETURNING {}",
        table.name,
        sets.join(", "),
        table.columns
    );
    let mut values: Vec<Value> = vec![id.into(), version.into()];
    values.extend(fields.into_iter().map(|(_, v)| v));
    let updated = T::find_by_statement(stmt(&sql, values))
        .one(tx.conn())
        .await
        .map_err(|e| constraint_error(table, e))?;
    match updated {
        Some(row) => Ok(row),
        None => Err(stale_or_missing(tx, table, id, version).await),
    }
}

async fn stale_or_missing(tx: &TenantTx, table: &Table, id: Uuid, given: i64) -> ApiError {
    let current = tx
        .conn()
        .query_one_raw(stmt(
            &format!("SELECT version FROM {} WHERE id = $1", table.name),
            vec![id.into()],
        ))
        .await;
    match current {
        Ok(Some(row)) => match row.try_get_by_index::<i64>(0) {
            Ok(current) => ApiError::StaleVersion { given, current },
            Err(e) => e.into(),
        },
        Ok(None) => ApiError::NotFound(table.noun),
        Err(e) => e.into(),
    }
}

/// Deletes record `id`.
pub async fn delete(tx: &TenantTx, table: &Table, id: Uuid) -> Result<(), ApiError> {
    let res = tx
        .conn()
        .execute_raw(stmt(
            &format!("DELETE FROM {} WHERE id = $1", table.name),
            vec![id.into()],
        ))
        .await
        .map_err(|e| constraint_error(table, e))?;
    if res.rows_affected() == 0 {
        return Err(ApiError::NotFound(table.noun));
    }
    Ok(())
}

/// Maps a foreign-key violation to a 422 on the referencing field, a
/// unique violation to 409, a CHECK violation to 422; anything else stays
/// an internal error.
pub fn constraint_error(table: &Table, err: DbErr) -> ApiError {
    let state = tenancy::error::sqlstate(&err);
    let message = err.to_string();
    match state.as_deref() {
        Some("23503") => {
            // Constraint names are `<table>_<column>_fkey`.
            let field = message
                .split('"')
                .find(|s| s.ends_with("_fkey"))
                .and_then(|c| c.strip_prefix(&format!("{}_", table.name)))
                .and_then(|c| c.strip_suffix("_fkey"))
                .unwrap_or("id")
                .to_owned();
            let mut errors = FieldErrors::new();
            if message.contains("still referenced") || message.contains("is still referenced") {
                return ApiError::Conflict(format!(
                    "this {} is still referenced by other records",
                    table.noun
                ));
            }
            errors.add(&field, "refers to a record that does not exist");
            ApiError::Validation(errors)
        }
        Some("23505") => {
            ApiError::Conflict(format!("a {} with these values already exists", table.noun))
        }
        Some("23514") | Some("22001") | Some("22007") | Some("22008") => {
            let mut errors = FieldErrors::new();
            errors.add("body", "a value is out of range for this record");
            ApiError::Validation(errors)
        }
        _ => err.into(),
    }
}

/// The version a PATCH is made against: `If-Match` (`"3"` or `W/"3"`) or
/// the body's `version`.
pub fn expected_version(req: &HttpRequest, body: Option<i64>) -> Result<i64, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok());
    match (header, body) {
        (Some(h), _) => h
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .map_err(|_| {
                let mut e = FieldErrors::new();
                e.add("If-Match", "must be a record version such as \"3\"");
                e.into()
            }),
        (None, Some(v)) => Ok(v),
        (None, None) => {
            let mut e = FieldErrors::new();
            e.add(
                "version",
                "is required (or send If-Match) so concurrent edits are not lost",
            );
            Err(e.into())
        }
    }
}

/// A PATCH field that may be set to a value, set to null, or left alone.
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// The columns a create or update will write, validated field by field;
/// every invalid field is reported together.
#[derive(Default)]
pub struct Changes {
    fields: Vec<(&'static str, Value)>,
    errors: FieldErrors,
}

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `column` if `input` is present and valid; records its error
    /// otherwise.
    pub fn set<T, E>(&mut self, column: &'static str, input: Option<Result<T, E>>)
    where
        T: Into<Value>,
        E: std::fmt::Display,
    {
        match input {
            Some(Ok(v)) => self.fields.push((column, v.into())),
            Some(Err(e)) => self.errors.add(column, e.to_string()),
            None => {}
        }
    }

    /// Writes `column` unchecked.
    pub fn put(&mut self, column: &'static str, value: impl Into<Value>) {
        self.fields.push((column, value.into()));
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// The columns, or 422 with every invalid field.
    pub fn finish(self) -> Result<Vec<(&'static str, Value)>, ApiError> {
        if self.errors.is_empty() {
            Ok(self.fields)
        } else {
            Err(self.errors.into())
        }
    }
}
