//! Endpoints for offline-first client libraries: WatermelonDB's
//! `synchronize()` (pullChanges / pushChanges) and RxDB's
//! `replicateRxCollection` (checkpointed pull, push answering conflicts).
//! Both sit on the native engine: the same cursors, permissions, row
//! filters, conflict strategies and log.

use std::collections::BTreeMap;
use std::time::Instant;

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, json};
use sync_engine::Permissions;
use sync_engine::models::model;
use sync_engine::push::{self, Mutation, Op, Pushed, Resolution, Status};
use tenancy::TenantTx;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::batch::Batch;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::sync::{log_failure, models, run_pull};
use crate::state::AppState;
use sync_engine::log::{Ending, Entry, Kind};
use sync_engine::pull::{MAX_PAGE, Page};

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(watermelon_pull)
        .service(watermelon_push)
        .service(rxdb_pull)
        .service(rxdb_push);
}

/// Most records one WatermelonDB pull returns (it has no paging).
const WATERMELON_MAX: usize = 200_000;

/// Mutations made from WatermelonDB raw records: as [`fields_of`], with
/// object fields (`custom`) read back from the JSON text they travel as
/// (an empty text is an empty object; text that is not JSON stays as it is
/// and is refused like any value of the wrong type).
fn watermelon_fields(record: &Map<String, serde_json::Value>) -> Map<String, serde_json::Value> {
    let mut fields = fields_of(record);
    if let Some(serde_json::Value::String(text)) = fields.get("custom") {
        let parsed = if text.trim().is_empty() {
            Some(serde_json::Value::Object(Map::new()))
        } else {
            serde_json::from_str::<serde_json::Value>(text).ok()
        };
        if let Some(v) = parsed.filter(serde_json::Value::is_object) {
            fields.insert("custom".into(), v);
        }
    }
    fields
}

/// Mutations made from client records: server-kept keys are dropped.
fn fields_of(record: &Map<String, serde_json::Value>) -> Map<String, serde_json::Value> {
    record
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "id" | "version"
                    | "created_at"
                    | "updated_at"
                    | "_status"
                    | "_changed"
                    | "_deleted"
                    | "_meta"
                    | "_attachments"
                    | "_rev"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn uuid_of(v: Option<&serde_json::Value>) -> Result<Uuid, ApiError> {
    v.and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ApiError::field("id", "must be a UUID string"))
}

/// Applies `mutations` with the caller's permissions (loaded once by the
/// adapter, which also reads records with them).
async fn apply(
    state: &AppState,
    tx: &TenantTx,
    user: &AuthUser,
    perms: &Permissions,
    mutations: &[Mutation],
) -> Result<Pushed, ApiError> {
    let custom = state.rules.custom(tx).await?;
    Ok(push::push(tx.conn(), user.id, perms, &custom, None, mutations).await?)
}

fn counts(pushed: &Pushed) -> BTreeMap<String, u64> {
    pushed
        .summary
        .iter()
        .map(|(m, c)| (m.clone(), c.created + c.updated + c.deleted))
        .collect()
}

#[derive(Deserialize, ToSchema)]
pub struct WatermelonPull {
    /// The `timestamp` of the previous pull, or null.
    pub last_pulled_at: Option<i64>,
    /// A stable id of this installation, the same as in its pushes: records
    /// it created itself come back as `updated`, not `created`.
    pub device_id: Option<String>,
    /// Tables to pull; all when absent.
    #[serde(default)]
    pub tables: Vec<String>,
}

/// WatermelonDB pullChanges: every change since `last_pulled_at`.
#[utoipa::path(tag = "sync (clients)",
    request_body = WatermelonPull, responses((status = 200)), security(("bearer" = [])))]
#[post("/sync/watermelon/pull")]
pub async fn watermelon_pull(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Batch<WatermelonPull>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let b = body.into_inner();
    let models = models(&b.tables)?;
    let key = format!(
        "watermelon:{}",
        models
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let mut cursor = match b.last_pulled_at {
        None => None,
        Some(micros) => {
            let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(|| {
                ApiError::field("last_pulled_at", "is not a timestamp this server issued")
            })?;
            sync_engine::checkpoints::complete_before(tx.conn(), user.id, &key, at).await?
        }
    };
    let mut changes: BTreeMap<&'static str, serde_json::Value> = BTreeMap::new();
    let mut total = 0usize;
    let last = loop {
        let pulled = run_pull(
            &state,
            &tx,
            tenant.0.id(),
            &user,
            &models,
            Page {
                cursor: cursor.as_deref(),
                limit: MAX_PAGE,
                device: b.device_id.as_deref(),
                tombstones: false,
                flat: true,
            },
        )
        .await?;
        for (name, c) in &pulled.changes {
            let entry = changes
                .entry(name)
                .or_insert_with(|| json!({ "created": [], "updated": [], "deleted": [] }));
            for (list, raws) in [("created", &c.created), ("updated", &c.updated)] {
                if let Some(arr) = entry[list].as_array_mut() {
                    for raw in raws {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                            arr.push(v);
                        }
                    }
                }
            }
            if let Some(arr) = entry["deleted"].as_array_mut() {
                arr.extend(c.deleted.iter().map(|id| json!(id)));
            }
            total += c.len();
        }
        let encoded = state.cursors.encode(&pulled.cursor);
        if !pulled.has_more {
            break encoded;
        }
        if total >= WATERMELON_MAX {
            return Err(ApiError::TooLarge(format!(
                "more than {WATERMELON_MAX} changes: sync with the native protocol, which pages"
            )));
        }
        cursor = Some(encoded);
    };
    let issued = sync_engine::checkpoints::issue_complete(tx.conn(), user.id, &key, &last).await?;
    Entry {
        user: user.id,
        client: Some("watermelondb"),
        kind: Kind::Pull,
        counts: changes.keys().map(|k| ((*k).to_owned(), 0)).collect(),
        started,
    }
    .record(tx.conn(), Ending::Ok, None)
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({
        "changes": changes,
        "timestamp": issued.timestamp_micros(),
    })))
}

#[derive(Deserialize, ToSchema)]
pub struct WatermelonPush {
    /// `{table: {created: [records], updated: [records], deleted: [ids]}}`.
    #[schema(value_type = Object)]
    pub changes: BTreeMap<String, WatermelonTable>,
    pub last_pulled_at: Option<i64>,
    /// A stable id of this installation (see the pull).
    pub device_id: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct WatermelonTable {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub created: Vec<Map<String, serde_json::Value>>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub updated: Vec<Map<String, serde_json::Value>>,
    #[serde(default)]
    pub deleted: Vec<String>,
}

/// WatermelonDB pushChanges. A change made against a version the server
/// has since moved past answers 409 and applies nothing: the client pulls
/// and tries again. Records the server refuses are named in
/// `experimentalRejectedIds` and the rest applies.
#[utoipa::path(tag = "sync (clients)",
    request_body = WatermelonPush, responses((status = 200), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/sync/watermelon/push")]
pub async fn watermelon_push(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Batch<WatermelonPush>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut mutations = Vec::new();
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    if let Some(device) = &body.device_id {
        push::name_device(tx.conn(), device).await?;
    }
    let perms = state.rules.permissions(&tx, &user.roles).await?;
    // What the device had pulled: deletes of records changed after that
    // pull are conflicts, settled by each model's strategy.
    let pulled_below = match body
        .last_pulled_at
        .and_then(DateTime::<Utc>::from_timestamp_micros)
    {
        Some(at) => match sync_engine::checkpoints::issued_at(tx.conn(), user.id, at).await? {
            Some(cursor) => Some(state.cursors.decode(&cursor, tenant.0.id())?.lo),
            None => None,
        },
        None => None,
    };
    for (table, c) in &body.changes {
        let md = model(table)
            .ok_or_else(|| ApiError::field("changes", format!("unknown table `{table}`")))?;
        let created: Vec<Uuid> = c
            .created
            .iter()
            .filter_map(|r| r.get("id").and_then(|v| v.as_str()))
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect();
        let existing = push::current_records(tx.conn(), md, &perms, user.id, &created).await?;
        let mut next = |op, id, base_version, fields| {
            mutations.push(Mutation {
                mutation_id: mutations.len() as i64 + 1,
                op,
                model: md.name().to_owned(),
                id,
                base_version,
                fields,
            });
        };
        for r in &c.created {
            // A create the server already has (its answer was lost) is
            // applied as an update, as WatermelonDB's backend contract says.
            let id = uuid_of(r.get("id"))?;
            match existing.get(&id) {
                Some((version, _)) => next(Op::Update, id, Some(*version), watermelon_fields(r)),
                None => next(Op::Create, id, None, watermelon_fields(r)),
            }
        }
        for r in &c.updated {
            let version = r.get("version").and_then(serde_json::Value::as_i64);
            next(
                Op::Update,
                uuid_of(r.get("id"))?,
                version.or(Some(1)),
                watermelon_fields(r),
            );
        }
        let deleted = c
            .deleted
            .iter()
            .map(|id| {
                Uuid::parse_str(id)
                    .map_err(|_| ApiError::field("deleted", "must hold UUID strings"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bases = match pulled_below {
            Some(lo) => sync_engine::push::delete_bases(tx.conn(), md, &deleted, lo).await?,
            None => Default::default(),
        };
        for id in deleted {
            next(Op::Delete, id, bases.get(&id).copied(), Map::new());
        }
    }
    let pushed = apply(&state, &tx, &user, &perms, &mutations).await?;
    let entry = Entry {
        user: user.id,
        client: Some("watermelondb"),
        kind: Kind::Push,
        counts: counts(&pushed),
        started,
    };
    if pushed.results.iter().any(|o| o.status == Status::Conflict) {
        // WatermelonDB's contract: a record changed on the server since the
        // device's last pull aborts the whole push; the device pulls and
        // pushes again.
        tx.rollback().await?;
        let detail = json!({ "applied": false, "results": pushed.results });
        let err = ApiError::Conflict(
            "records changed on the server since your last pull; pull and push again".into(),
        );
        let _ = log_failure(&state, &tenant, &entry, err).await;
        return Ok(HttpResponse::Conflict().json(detail));
    }
    // Records the server refused (invalid, not permitted, or gone) are
    // named per table in `experimentalRejectedIds`: WatermelonDB keeps them
    // unsynced, and the rest of the push applies. A record that is gone
    // reaches the device as a delete with its next pull.
    let rejected: Vec<&push::Outcome> = pushed
        .results
        .iter()
        .filter(|o| o.status == Status::Failed)
        .collect();
    let mut rejected_ids: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    for o in &rejected {
        rejected_ids.entry(o.model.as_str()).or_default().push(o.id);
    }
    let ending = if rejected.is_empty() {
        Ending::Ok
    } else {
        Ending::Partial
    };
    entry.record(tx.conn(), ending, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({
        "applied": true,
        "summary": pushed.summary,
        "experimentalRejectedIds": rejected_ids,
        "rejected": rejected,
    })))
}

#[derive(Deserialize, ToSchema)]
pub struct RxdbPull {
    /// The checkpoint of the previous pull (`{"cursor": "..."}`), or null.
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<RxdbCheckpoint>,
    pub batch_size: Option<usize>,
}

/// An RxDB checkpoint: an object, because RxDB merges checkpoints with
/// `Object.assign`. A bare cursor string (what older servers answered) is
/// accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RxdbCheckpoint {
    Object { cursor: String },
    Bare(String),
}

impl RxdbCheckpoint {
    fn cursor(&self) -> &str {
        match self {
            Self::Object { cursor } | Self::Bare(cursor) => cursor,
        }
    }
}

/// RxDB pull handler: documents since the checkpoint, deletes as
/// `{"id", "_deleted": true}`.
#[utoipa::path(tag = "sync (clients)",
    request_body = RxdbPull, params(("model" = String, Path)),
    responses((status = 200)), security(("bearer" = [])))]
#[post("/sync/rxdb/{model}/pull")]
pub async fn rxdb_pull(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    name: web::Path<String>,
    body: Batch<RxdbPull>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let md =
        model(&name).ok_or_else(|| ApiError::field("model", format!("unknown model `{name}`")))?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let pulled = run_pull(
        &state,
        &tx,
        tenant.0.id(),
        &user,
        &[md],
        Page {
            cursor: body.checkpoint.as_ref().map(RxdbCheckpoint::cursor),
            limit: body.batch_size.unwrap_or(100),
            device: None,
            // RxDB may start over holding documents (see `Page::tombstones`).
            tombstones: true,
            flat: false,
        },
    )
    .await?;
    let mut documents = Vec::new();
    let mut n = 0;
    for c in pulled.changes.values() {
        for raw in c.created.iter().chain(&c.updated) {
            if let Ok(serde_json::Value::Object(mut doc)) = serde_json::from_str(raw.get()) {
                doc.insert("_deleted".into(), false.into());
                documents.push(serde_json::Value::Object(doc));
            }
        }
        documents.extend(
            c.deleted
                .iter()
                .map(|id| json!({ "id": id, "_deleted": true })),
        );
        n += c.len();
    }
    Entry {
        user: user.id,
        client: Some("rxdb"),
        kind: Kind::Pull,
        counts: BTreeMap::from([(md.name().to_owned(), n as u64)]),
        started,
    }
    .record(tx.conn(), Ending::Ok, None)
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({
        "documents": documents,
        "checkpoint": { "cursor": state.cursors.encode(&pulled.cursor) },
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RxdbRow {
    #[schema(value_type = Option<Object>)]
    pub assumed_master_state: Option<Map<String, serde_json::Value>>,
    #[schema(value_type = Object)]
    pub new_document_state: Map<String, serde_json::Value>,
}

/// RxDB push handler: applies the rows and answers the master state of
/// every row it did not take (conflicting, refused, or of a deleted record).
#[utoipa::path(tag = "sync (clients)",
    request_body = Vec<RxdbRow>, params(("model" = String, Path)),
    responses((status = 200), (status = 422)), security(("bearer" = [])))]
#[post("/sync/rxdb/{model}/push")]
pub async fn rxdb_push(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    name: web::Path<String>,
    body: Batch<Vec<RxdbRow>>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let md =
        model(&name).ok_or_else(|| ApiError::field("model", format!("unknown model `{name}`")))?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let ids = body
        .iter()
        .map(|row| uuid_of(row.new_document_state.get("id")))
        .collect::<Result<Vec<_>, _>>()?;
    let perms = state.rules.permissions(&tx, &user.roles).await?;
    let current = push::current_records(tx.conn(), md, &perms, user.id, &ids).await?;
    let mut mutations = Vec::with_capacity(body.len());
    for (row, id) in body.iter().zip(ids) {
        let doc = &row.new_document_state;
        let deleted = doc.get("_deleted").and_then(serde_json::Value::as_bool) == Some(true);
        // RxDB's compare-and-set is on content: the write applies when the
        // master state the client assumed is the server's, whatever version
        // number the client's copy carries.
        let server = current.get(&id);
        let base = match (&row.assumed_master_state, server) {
            (Some(seen), Some((version, now))) if push::same_as_seen(md, seen, now) => {
                Some(*version)
            }
            (Some(seen), _) => seen
                .get("version")
                .and_then(serde_json::Value::as_i64)
                .or(Some(0)),
            (None, _) => None,
        };
        let op = match (&row.assumed_master_state, deleted, server) {
            (_, true, _) => Op::Delete,
            // A create the server already holds as sent (a retry whose
            // answer was lost) is done; with other content it conflicts.
            (None, false, Some((_, now))) if push::same_as_seen(md, doc, now) => continue,
            (None, false, _) => Op::Create,
            (Some(_), false, _) => Op::Update,
        };
        mutations.push(Mutation {
            mutation_id: mutations.len() as i64 + 1,
            op,
            model: md.name().to_owned(),
            id,
            base_version: base,
            fields: if op == Op::Delete {
                Map::new()
            } else {
                fields_of(doc)
            },
        });
    }
    let pushed = apply(&state, &tx, &user, &perms, &mutations).await?;
    // RxDB's protocol has one answer for a row the server did not take as
    // sent: the master state. A conflict or a merge answers the server's
    // document; a row
    // the server refused (invalid, or its record gone) answers the record
    // as the server holds it, or its tombstone, so the client's conflict
    // handler settles it and no row blocks the others.
    let mut refusals = Vec::new();
    let conflicts: Vec<serde_json::Value> = pushed
        .results
        .iter()
        .filter_map(|o| match (o.status, o.resolution) {
            // A merge is the server's new state, which the client's copy
            // is not: answered like a conflict, so the client adopts it.
            (Status::Conflict, _) | (Status::Updated, Some(Resolution::Merged)) => {
                o.server.clone().map(|mut doc| {
                    if let Some(obj) = doc.as_object_mut() {
                        obj.insert("_deleted".into(), false.into());
                    }
                    doc
                })
            }
            (Status::Failed, _) => {
                refusals.push(format!("{}: {}", o.id, o.errors.join("; ")));
                Some(match current.get(&o.id) {
                    Some((_, doc)) => {
                        let mut doc = doc.clone();
                        doc.insert("_deleted".into(), false.into());
                        serde_json::Value::Object(doc)
                    }
                    None => json!({ "id": o.id, "_deleted": true }),
                })
            }
            _ => None,
        })
        .collect();
    let error = (!refusals.is_empty()).then(|| refusals.join("\n"));
    Entry {
        user: user.id,
        client: Some("rxdb"),
        kind: Kind::Push,
        counts: counts(&pushed),
        started,
    }
    .record(
        tx.conn(),
        if conflicts.is_empty() {
            Ending::Ok
        } else {
            Ending::Partial
        },
        error.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(conflicts))
}
