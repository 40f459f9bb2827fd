//! Reading the change journal: the audit trail of every change to CRM
//! records (written by the tenant's triggers; see the tenant migration
//! `create_journal`), newest first, with keyset pagination.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

/// Most entries one page holds.
pub const MAX_PAGE: u64 = 1000;

/// What to read of the journal.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub model: Option<String>,
    pub record_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub channel: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this one (the previous page's cursor).
    pub before: Option<i64>,
    pub limit: u64,
}

/// The channels a change can come through.
pub const CHANNELS: &[&str] = &["rest", "sync", "job", "sql"];

/// One journaled change.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The writing transaction (`pg_current_xact_id()`).
    pub txid: String,
    pub model: String,
    pub record_id: Uuid,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// The record's version after the change.
    pub version: i64,
    /// `{field: [old, new]}`.
    pub changes: serde_json::Value,
    /// `user`, `operator`, `system` or `sql`.
    pub actor: String,
    pub user_id: Option<Uuid>,
    /// `rest`, `sync`, `job` or `sql`.
    pub channel: String,
    pub request_id: Option<String>,
}

/// One page of `q`, newest first.
pub async fn page(conn: &impl ConnectionTrait, q: &Query) -> Result<Vec<Entry>, DbErr> {
    let mut values: Vec<Value> = Vec::new();
    let mut conds: Vec<String> = Vec::new();
    let mut push = |cond: &str, v: Value| {
        values.push(v);
        conds.push(cond.replace('?', &format!("${}", values.len())));
    };
    if let Some(m) = &q.model {
        push("model = ?", m.clone().into());
    }
    if let Some(r) = q.record_id {
        push("record_id = ?", r.into());
    }
    if let Some(u) = q.user_id {
        push("user_id = ?", u.into());
    }
    if let Some(c) = &q.channel {
        push("channel = ?", c.clone().into());
    }
    if let Some(f) = q.from {
        push("at >= ?", f.into());
    }
    if let Some(t) = q.to {
        push("at < ?", t.into());
    }
    if let Some(b) = q.before {
        push("id < ?", b.into());
    }
    values.push((q.limit.clamp(1, MAX_PAGE) as i64).into());
    let sql = format!(
        "SELECT id, at, txid::text AS txid, model, record_id, action, version, changes, actor, \
                user_id, channel, request_id \
         FROM journal {where_} ORDER BY id DESC LIMIT ${n}",
        where_ = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        },
        n = values.len(),
    );
    Entry::find_by_statement(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        &sql,
        values,
    ))
    .all(conn)
    .await
}

/// The tenant's own retention in days, if it set one.
pub async fn retention(conn: &impl ConnectionTrait) -> Result<Option<i32>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT retention_days FROM journal_settings",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<Option<i32>>(0))
        .transpose()?
        .flatten())
}

/// Sets (or, with `None`, clears) the tenant's own retention in days.
pub async fn set_retention(conn: &impl ConnectionTrait, days: Option<i32>) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "INSERT INTO journal_settings (singleton, retention_days) VALUES (true, $1) \
         ON CONFLICT (singleton) DO UPDATE SET retention_days = EXCLUDED.retention_days",
        [days.into()],
    ))
    .await?;
    Ok(())
}

/// Deletes entries older than the tenant's retention, or `default_days`
/// where it set none, and the events made from them (with their webhook
/// deliveries); how many entries went.
pub async fn purge(conn: &impl ConnectionTrait, default_days: i32) -> Result<u64, DbErr> {
    let res = conn
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "WITH horizon AS (SELECT now() - make_interval(days => coalesce( \
                     (SELECT retention_days FROM journal_settings), $1)) AS at), \
                  gone_events AS (DELETE FROM events WHERE at < (SELECT at FROM horizon)), \
                  gone AS (DELETE FROM journal WHERE at < (SELECT at FROM horizon) RETURNING 1) \
             SELECT count(*) FROM gone",
            [default_days.into()],
        ))
        .await?;
    Ok(res
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0) as u64)
}

/// The CSV header of [`Entry::csv_row`].
pub const CSV_HEADER: &str =
    "id,at,txid,model,record_id,action,version,actor,user_id,channel,request_id,changes\n";

impl Entry {
    /// The entry as one CSV line (RFC 4180 quoting), `changes` as JSON.
    pub fn csv_row(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        // A cell starting with = + - @ is a formula to spreadsheets.
        let safe = |s: String| {
            if s.starts_with(['=', '+', '-', '@']) {
                format!("'{s}")
            } else {
                s
            }
        };
        let cells = [
            self.id.to_string(),
            self.at.to_rfc3339(),
            self.txid.clone(),
            self.model.clone(),
            self.record_id.to_string(),
            self.action.clone(),
            self.version.to_string(),
            self.actor.clone(),
            self.user_id.map(|u| u.to_string()).unwrap_or_default(),
            self.channel.clone(),
            safe(self.request_id.clone().unwrap_or_default()),
            self.changes.to_string(),
        ];
        let mut line = cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let e = Entry {
            id: 7,
            at: DateTime::from_timestamp(0, 0).expect("epoch"),
            txid: "42".into(),
            model: "clients".into(),
            record_id: Uuid::nil(),
            action: "update".into(),
            version: 2,
            changes: serde_json::json!({ "name": ["A, \"B\"", "=1+1"] }),
            actor: "user".into(),
            user_id: None,
            channel: "rest".into(),
            request_id: Some("=cmd".into()),
        };
        let row = e.csv_row();
        assert!(
            row.starts_with("7,1970-01-01T00:00:00+00:00,42,clients,"),
            "{row}"
        );
        assert!(row.contains(",'=cmd,"), "{row}");
        assert!(
            row.ends_with("\"{\"\"name\"\":[\"\"A, \\\"\"B\\\"\"\"\",\"\"=1+1\"\"]}\"\n"),
            "{row}"
        );
    }
}
