//! PUSH: a client's batch of mutations, applied once, with conflicts settled
//! by each model's strategy and reported per record.
//!
//! Mutations carry increasing ids per client; the highest applied is stored
//! in `sync_clients` in the same transaction as the writes, so a retried
//! batch skips what it already applied. Runs of mutations of one model and
//! kind are written with one statement each; a run that fails is retried
//! record by record (each in a savepoint) to report the failing ones.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait, Value,
};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use uuid::Uuid;

use domain::access::{Permissions, Scope};
use domain::check::{self, Mode, ServerFields};
use domain::custom::Definitions;
use domain::render;
use domain::store::{self, Returning};

use crate::error::SyncError;
use crate::models::{Model, Strategy, model};

/// The largest batch accepted.
pub const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One change made by a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    /// Increasing per client.
    pub mutation_id: i64,
    pub op: Op,
    pub model: String,
    pub id: Uuid,
    /// The version the change was made against (updates and deletes).
    #[serde(default)]
    pub base_version: Option<i64>,
    #[serde(default)]
    pub fields: Map<String, serde_json::Value>,
}

/// What became of one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Updated,
    Deleted,
    /// Not applied: settled for the server by the model's strategy.
    Conflict,
    /// Not applied: invalid, refused, or no such record.
    Failed,
    /// Applied by an earlier delivery of the same batch.
    Duplicate,
}

impl Status {
    fn applied(op: Op) -> Self {
        match op {
            Op::Create => Self::Created,
            Op::Update => Self::Updated,
            Op::Delete => Self::Deleted,
        }
    }
}

/// How a conflict was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Rejected,
    ServerWins,
    ClientWins,
    Merged,
}

/// What happened to one mutation.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub mutation_id: i64,
    pub model: String,
    pub id: Uuid,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Counts per model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub conflicted: u64,
    pub failed: u64,
    pub duplicate: u64,
}

#[derive(Debug, Serialize)]
pub struct Pushed {
    pub results: Vec<Outcome>,
    pub summary: BTreeMap<String, Counts>,
    /// Whether everything sent was applied (or already had been).
    pub complete: bool,
}

use domain::store::stmt;

fn outcome(m: &Mutation, status: Status) -> Outcome {
    Outcome {
        mutation_id: m.mutation_id,
        model: m.model.clone(),
        id: m.id,
        status,
        resolution: None,
        server: None,
        errors: Vec::new(),
    }
}

fn failed(m: &Mutation, errors: Vec<String>) -> Outcome {
    Outcome {
        errors,
        ..outcome(m, Status::Failed)
    }
}

/// A mutation of a record the caller cannot find (deleted, or never
/// theirs to see): failed, with the tombstone the device should apply.
fn gone(m: &Mutation, error: &str) -> Outcome {
    Outcome {
        server: Some(serde_json::json!({ "id": m.id, "_deleted": true })),
        ..failed(m, vec![error.into()])
    }
}

/// Checks the batch as a whole: size, known models, push permission.
pub fn check_batch(perms: &Permissions, mutations: &[Mutation]) -> Result<(), SyncError> {
    if mutations.len() > MAX_BATCH {
        return Err(SyncError::TooLarge {
            max: MAX_BATCH,
            got: mutations.len(),
        });
    }
    for m in mutations {
        let md = model(&m.model).ok_or_else(|| SyncError::UnknownModel(m.model.clone()))?;
        perms.write(md)?;
        if m.mutation_id <= 0 {
            return Err(SyncError::BadRequest(format!(
                "mutation_id must be positive, got {}",
                m.mutation_id
            )));
        }
    }
    Ok(())
}

/// The client's last applied mutation id, claiming `client_id` for `user`.
async fn last_mutation(
    conn: &impl ConnectionTrait,
    client_id: &str,
    user: Uuid,
) -> Result<i64, SyncError> {
    let row = conn
        .query_one_raw(stmt(
            "INSERT INTO sync_clients (client_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (client_id) DO UPDATE SET updated_at = now() \
             RETURNING user_id, last_mutation_id",
            vec![client_id.into(), user.into()],
        ))
        .await?
        .ok_or_else(|| SyncError::BadRequest("client registration failed".into()))?;
    let owner: Uuid = row.try_get("", "user_id")?;
    if owner != user {
        return Err(SyncError::ForeignClient(client_id.to_owned()));
    }
    Ok(row.try_get("", "last_mutation_id")?)
}

struct Current {
    data: String,
    in_scope: bool,
    version: i64,
    field_versions: Option<serde_json::Value>,
    /// Whether the pushing device (named with [`name_device`]) wrote the
    /// record's latest versions, and from which version on without anyone
    /// else writing in between.
    own_run: Option<bool>,
    run_from: Option<i64>,
}

impl Current {
    /// The version at which field `f` last changed (1: at creation).
    fn changed_at(&self, f: &str) -> i64 {
        self.field_versions
            .as_ref()
            .and_then(|v| v.get(f))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1)
    }

    /// Whether the pushing device itself made the latest change of `f`.
    fn own(&self, f: &str) -> bool {
        self.own_run == Some(true) && self.run_from.is_some_and(|from| self.changed_at(f) >= from)
    }

    /// Whether anyone but the pushing device changed a field after `base`:
    /// if not, a mutation made against `base` is stale only because of the
    /// device's own earlier mutations, and applies as made.
    fn changed_by_others_since(&self, base: i64) -> bool {
        self.field_versions
            .as_ref()
            .and_then(serde_json::Value::as_object)
            .is_some_and(|fields| {
                fields
                    .iter()
                    .any(|(f, v)| v.as_i64().unwrap_or(i64::MAX) > base && !self.own(f))
            })
    }
}

/// The record as the API shows it, whether it is in the caller's scope,
/// when each field last changed, and which versions the pushing device
/// wrote.
async fn current(
    conn: &impl ConnectionTrait,
    md: &Model,
    scope: &Scope,
    caller: Uuid,
    id: Uuid,
) -> Result<Option<Current>, SyncError> {
    let mut values: Vec<Value> = Vec::new();
    let visible = scope.sql(md, caller, &mut values);
    values.push(id.into());
    let sql = format!(
        "SELECT coalesce({visible}, false) AS in_scope, t.version, c.field_versions, \
         c.last_device = nullif(current_setting('strata.device', true), '') AS own_run, \
         c.last_device_from AS run_from, {columns} \
         FROM {table} t LEFT JOIN sync_changes c ON c.model = '{model}' AND c.record_id = t.id \
         WHERE t.id = ${n} FOR UPDATE OF t",
        columns = md.columns(),
        table = md.table,
        model = md.name(),
        n = values.len()
    );
    let Some(row) = conn.query_one_raw(stmt(&sql, values)).await? else {
        return Ok(None);
    };
    Ok(Some(Current {
        in_scope: row.try_get_by_index(0)?,
        version: row.try_get_by_index(1)?,
        field_versions: row.try_get_by_index(2)?,
        own_run: row.try_get_by_index(3)?,
        run_from: row.try_get_by_index(4)?,
        data: render::record(md, &row, 5)?,
    }))
}

/// A record in a JSON array for a bulk statement.
fn row_json(m: &Mutation, fields: &Map<String, serde_json::Value>) -> serde_json::Value {
    store::row(m.id, m.base_version, fields)
}

/// The ids of `written` rows.
fn ids(written: Result<Vec<store::Written>, sea_orm::DbErr>) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    written.map(|w| w.into_iter().map(|w| w.id).collect())
}

async fn insert(
    conn: &impl ConnectionTrait,
    md: &Model,
    rows: &[serde_json::Value],
    cols: &[&str],
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    ids(store::insert(conn, md, rows, cols, Returning::Ids).await)
}

async fn update(
    conn: &impl ConnectionTrait,
    md: &Model,
    scope: &Scope,
    caller: Uuid,
    rows: &[serde_json::Value],
    cols: &[&str],
    check_version: bool,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    ids(store::update(
        conn,
        md,
        scope,
        caller,
        rows,
        cols,
        check_version,
        Returning::Ids,
    )
    .await)
}

use domain::store::delete;

/// A run of validated mutations of one model and kind.
struct Run<'a> {
    md: &'static Model,
    op: Op,
    items: Vec<(&'a Mutation, Map<String, serde_json::Value>)>,
    /// The records the run touches.
    ids: HashSet<Uuid>,
}

/// Applies `mutations` from `client_id` for `caller`. Mutations at or below
/// the client's last applied id are skipped as duplicates; without a
/// client id nothing is skipped. When `complete` is false, a caller that
/// wants all or nothing rolls the transaction back.
pub async fn push(
    conn: &DatabaseTransaction,
    caller: Uuid,
    perms: &Permissions,
    custom: &Definitions,
    client_id: Option<&str>,
    mutations: &[Mutation],
) -> Result<Pushed, SyncError> {
    check_batch(perms, mutations)?;
    let last = match client_id {
        Some(id) => last_mutation(conn, id, caller).await?,
        None => 0,
    };
    let mut results: Vec<Option<Outcome>> = vec![None; mutations.len()];
    let mut index: HashMap<i64, usize> = HashMap::new();

    // Validate and group consecutive mutations of one model and kind; a
    // record met twice in one run starts a new run.
    let mut runs: Vec<Run> = Vec::new();
    for (i, m) in mutations.iter().enumerate() {
        index.insert(m.mutation_id, i);
        if m.mutation_id <= last {
            results[i] = Some(outcome(m, Status::Duplicate));
            continue;
        }
        let Some(md) = model(&m.model) else {
            results[i] = Some(failed(m, vec![format!("unknown model `{}`", m.model)]));
            continue;
        };
        let scope = perms.write(md)?;
        let fields = match m.op {
            Op::Delete => Map::new(),
            op => {
                let mode = if op == Op::Create {
                    Mode::Create
                } else {
                    Mode::Update
                };
                match check::input(
                    md,
                    custom.of(md),
                    &m.fields,
                    mode,
                    ServerFields::Ignore,
                    Some(caller),
                ) {
                    Ok(f) => f,
                    Err(refusal) => {
                        results[i] = Some(failed(
                            m,
                            store::StoreError::Invalid(refusal.errors).messages(),
                        ));
                        continue;
                    }
                }
            }
        };
        if m.op == Op::Create && !scope.matches(&fields, caller) {
            results[i] = Some(failed(
                m,
                store::StoreError::Invalid(store::out_of_scope()).messages(),
            ));
            continue;
        }
        if m.op == Op::Update && m.base_version.is_none() {
            results[i] = Some(failed(
                m,
                vec!["base_version: is required for updates".into()],
            ));
            continue;
        }
        let fresh = match runs.last() {
            Some(r) => r.md.name() != md.name() || r.op != m.op || r.ids.contains(&m.id),
            None => true,
        };
        if fresh {
            runs.push(Run {
                md,
                op: m.op,
                items: Vec::new(),
                ids: HashSet::new(),
            });
        }
        if let Some(run) = runs.last_mut() {
            run.ids.insert(m.id);
            run.items.push((m, fields));
        }
    }

    for run in &runs {
        let scope = perms.write(run.md)?;
        let done = apply_run(conn, caller, scope, run).await?;
        for o in done {
            if let Some(&i) = index.get(&o.mutation_id) {
                results[i] = Some(o);
            }
        }
    }

    let results: Vec<Outcome> = results.into_iter().flatten().collect();
    let mut summary: BTreeMap<String, Counts> = BTreeMap::new();
    let mut complete = true;
    for o in &results {
        let name = model(&o.model).map_or(o.model.clone(), |m| m.name().to_owned());
        let c = summary.entry(name).or_default();
        match o.status {
            Status::Created => c.created += 1,
            Status::Updated => c.updated += 1,
            Status::Deleted => c.deleted += 1,
            Status::Duplicate => c.duplicate += 1,
            Status::Conflict => {
                c.conflicted += 1;
                complete = false;
            }
            Status::Failed => {
                c.failed += 1;
                complete = false;
            }
        }
        if o.resolution.is_some() && o.status != Status::Conflict {
            c.conflicted += 1;
        }
    }
    if let Some(max) = mutations
        .iter()
        .map(|m| m.mutation_id)
        .max()
        .filter(|&m| m > last)
    {
        conn.execute_raw(stmt(
            "UPDATE sync_clients SET last_mutation_id = $2, updated_at = now() WHERE client_id = $1",
            vec![client_id.into(), max.into()],
        ))
        .await?;
    }
    Ok(Pushed {
        results,
        summary,
        complete,
    })
}

/// Columns written by any item of a run.
fn columns<'a>(run: &'a Run) -> Vec<&'a str> {
    let mut cols: Vec<&str> = Vec::new();
    for (_, f) in &run.items {
        for k in f.keys() {
            if !cols.contains(&k.as_str()) {
                cols.push(k);
            }
        }
    }
    cols
}

async fn apply_run(
    conn: &DatabaseTransaction,
    caller: Uuid,
    scope: &Scope,
    run: &Run<'_>,
) -> Result<Vec<Outcome>, SyncError> {
    let rows: Vec<serde_json::Value> = run.items.iter().map(|(m, f)| row_json(m, f)).collect();
    let cols = columns(run);
    let sp = conn.begin().await?;
    let bulk = match run.op {
        Op::Create => insert(&sp, run.md, &rows, &cols).await,
        Op::Update => update(&sp, run.md, scope, caller, &rows, &cols, true).await,
        Op::Delete => delete(&sp, run.md, scope, caller, &rows, true).await,
    };
    match bulk {
        Ok(ids) => {
            sp.commit().await?;
            let ids: HashSet<Uuid> = ids.into_iter().collect();
            let mut out = Vec::with_capacity(run.items.len());
            for (m, fields) in &run.items {
                if ids.contains(&m.id) {
                    out.push(outcome(m, Status::applied(run.op)));
                } else {
                    out.push(settle(conn, caller, scope, run.md, run.op, m, fields).await?);
                }
            }
            Ok(out)
        }
        Err(_) => {
            // Something in the run broke a constraint: find which, one by one.
            sp.rollback().await?;
            let mut out = Vec::with_capacity(run.items.len());
            for ((m, fields), row) in run.items.iter().zip(&rows) {
                let sp = conn.begin().await?;
                let one = std::slice::from_ref(row);
                let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
                let res = match run.op {
                    Op::Create => insert(&sp, run.md, one, &keys).await,
                    Op::Update => update(&sp, run.md, scope, caller, one, &keys, true).await,
                    Op::Delete => delete(&sp, run.md, scope, caller, one, true).await,
                };
                match res {
                    Ok(ids) if ids.contains(&m.id) => {
                        sp.commit().await?;
                        out.push(outcome(m, Status::applied(run.op)));
                    }
                    Ok(_) => {
                        sp.commit().await?;
                        out.push(settle(conn, caller, scope, run.md, run.op, m, fields).await?);
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        out.push(failed(m, store::refused(run.md, e).messages()));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// A mutation the bulk statement did not apply: the record is missing, out
/// of scope, or at another version. Settles it by the model's strategy.
async fn settle(
    conn: &DatabaseTransaction,
    caller: Uuid,
    scope: &Scope,
    md: &'static Model,
    op: Op,
    m: &Mutation,
    fields: &Map<String, serde_json::Value>,
) -> Result<Outcome, SyncError> {
    let Some(cur) = current(conn, md, scope, caller, m.id).await? else {
        return Ok(match op {
            // Deleting what is already gone is done.
            Op::Delete => outcome(m, Status::Deleted),
            // Not inserted and not there: the id is a deleted record's.
            Op::Create => gone(m, "id: a deleted record's id"),
            Op::Update => gone(m, "no such record"),
        });
    };
    if !cur.in_scope {
        // Rows outside the caller's scope are not theirs to see: answered
        // as REST answers them, as if they did not exist.
        return Ok(gone(m, "no such record"));
    }
    if op == Op::Update && m.base_version == Some(cur.version) {
        // Not stale, in scope, yet not written: the change would have
        // moved the record outside the rows the caller may write.
        return Ok(failed(
            m,
            store::StoreError::Invalid(store::out_of_scope()).messages(),
        ));
    }
    let server: Option<serde_json::Value> = serde_json::from_str(&cur.data).ok();
    let conflict = |resolution| Outcome {
        resolution: Some(resolution),
        server: server.clone(),
        ..outcome(m, Status::Conflict)
    };
    let strategy = md.meta.strategy;
    // Stale only because of this device's own earlier mutations (edits
    // queued offline on top of each other, or sent again after a lost
    // answer): applied as made, whatever the strategy.
    if let (Some(base), Op::Update | Op::Delete) = (m.base_version, op)
        && !cur.changed_by_others_since(base)
    {
        let row = row_json(m, fields);
        if op == Op::Delete {
            delete(conn, md, scope, caller, std::slice::from_ref(&row), false).await?;
        } else {
            let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            update(
                conn,
                md,
                scope,
                caller,
                std::slice::from_ref(&row),
                &keys,
                false,
            )
            .await?;
        }
        return Ok(outcome(m, Status::applied(op)));
    }
    match (strategy, op) {
        (Strategy::Reject, _) => Ok(conflict(Resolution::Rejected)),
        (Strategy::ServerWins, _) => Ok(conflict(Resolution::ServerWins)),
        (_, Op::Delete) => {
            let row = row_json(m, fields);
            delete(conn, md, scope, caller, std::slice::from_ref(&row), false).await?;
            Ok(Outcome {
                resolution: Some(Resolution::ClientWins),
                ..outcome(m, Status::Deleted)
            })
        }
        (Strategy::ClientWins, _) | (Strategy::Merge, Op::Create) => {
            let row = row_json(m, fields);
            let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            update(
                conn,
                md,
                scope,
                caller,
                std::slice::from_ref(&row),
                &keys,
                false,
            )
            .await?;
            Ok(Outcome {
                resolution: Some(Resolution::ClientWins),
                ..outcome(m, Status::Updated)
            })
        }
        (Strategy::Merge, Op::Update) => {
            // Keep the server's value of every field it changed after the
            // client's base version; apply the client's for the rest.
            let base = m.base_version.unwrap_or(0);
            let mut kept = Vec::new();
            let mut merged = Map::new();
            for (k, v) in fields {
                if cur.changed_at(k) > base && !cur.own(k) {
                    kept.push(k.clone());
                } else {
                    merged.insert(k.clone(), v.clone());
                }
            }
            let row = row_json(m, &merged);
            let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
            if !keys.is_empty() {
                update(
                    conn,
                    md,
                    scope,
                    caller,
                    std::slice::from_ref(&row),
                    &keys,
                    false,
                )
                .await?;
            }
            let after = current(conn, md, scope, caller, m.id)
                .await?
                .and_then(|c| serde_json::from_str(&c.data).ok());
            Ok(Outcome {
                resolution: Some(Resolution::Merged),
                server: after,
                errors: kept
                    .into_iter()
                    .map(|k| format!("{k}: kept the server's newer value"))
                    .collect(),
                ..outcome(m, Status::Updated)
            })
        }
    }
}

/// A push from client `client_id` for a caller with `perms`.
pub async fn for_caller(
    conn: &DatabaseTransaction,
    user: Uuid,
    perms: &Permissions,
    custom: &Definitions,
    client_id: Option<&str>,
    mutations: &[Mutation],
) -> Result<Pushed, SyncError> {
    if let Some(id) = client_id
        && (id.is_empty() || check::parameter(id, 200).is_err())
    {
        return Err(SyncError::Invalid {
            field: "client_id",
            message: "must be 1 to 200 characters without control characters".into(),
        });
    }
    push(conn, user, perms, custom, client_id, mutations).await
}

/// The current version and record (as pulls show it) of each of `ids`
/// that exists among the rows `caller` may push, for adapters whose
/// clients say "the record as I last saw it" rather than "the version I
/// last saw". Rows outside the caller's scope are not there for them.
pub async fn current_records(
    conn: &impl ConnectionTrait,
    md: &Model,
    perms: &Permissions,
    caller: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (i64, Map<String, serde_json::Value>)>, SyncError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut values: Vec<Value> = vec![ids.to_vec().into()];
    let visible = perms.write(md)?.sql(md, caller, &mut values);
    let sql = format!(
        "SELECT t.id, t.version, {columns} FROM {table} t WHERE t.id = ANY($1) AND {visible}",
        columns = md.columns(),
        table = md.table,
    );
    let rows = conn.query_all_raw(stmt(&sql, values)).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.try_get_by_index(0)?;
        let version: i64 = r.try_get_by_index(1)?;
        let data = render::record(md, &r, 2)?;
        let record = serde_json::from_str(&data)
            .map_err(|e| SyncError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
        out.insert(id, (version, record));
    }
    Ok(out)
}

/// Whether every field a client writes that `seen` carries has the value
/// `current` has: the client's picture of the record is the server's.
pub fn same_as_seen(
    md: &Model,
    seen: &Map<String, serde_json::Value>,
    current: &Map<String, serde_json::Value>,
) -> bool {
    md.fields
        .iter()
        .filter(|f| {
            matches!(
                f.owner,
                crate::models::Owner::Client | crate::models::Owner::CreateOnly
            )
        })
        .filter_map(|f| seen.get(f.name).map(|v| (f.name, v)))
        .all(|(name, v)| current.get(name).unwrap_or(&serde_json::Value::Null) == v)
}

/// For a client that deletes without saying which version it saw: the
/// base version of each of `ids` as of a pull that delivered everything
/// below transaction `since`. A record changed since then gets base
/// version 0, so its delete is settled by the model's strategy; one
/// unchanged since gets its current version, so the delete applies.
pub async fn delete_bases(
    conn: &impl ConnectionTrait,
    md: &Model,
    ids: &[Uuid],
    since: u64,
) -> Result<HashMap<Uuid, i64>, SyncError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT t.id, CASE WHEN c.txid >= $2::text::xid8 THEN 0 ELSE t.version END \
         FROM {table} t LEFT JOIN sync_changes c ON c.model = '{model}' AND c.record_id = t.id \
         WHERE t.id = ANY($1)",
        table = md.table,
        model = md.name(),
    );
    let rows = conn
        .query_all_raw(stmt(&sql, [ids.to_vec().into(), since.to_string().into()]))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect()
}

/// Names the device writing in this transaction: records it creates are
/// marked as its own (see [`crate::pull::Page::device`]).
pub async fn name_device(conn: &impl ConnectionTrait, device: &str) -> Result<(), SyncError> {
    domain::check::parameter(device, 200).map_err(|message| SyncError::Invalid {
        field: "device_id",
        message,
    })?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('strata.device', $1, true)",
        [device.into()],
    ))
    .await?;
    Ok(())
}
