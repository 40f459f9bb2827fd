//! The request and response shapes of the Django push/pull sync package,
//! served under `/api/sync/` so its existing clients move over unchanged.
//!
//! Its pulls name a timestamp per model. Strata never compares timestamps
//! with record times: every `last_sync` it hands out is recorded with the
//! exact cursor it stands for. A timestamp Strata issued resumes from its
//! cursor (pages included); any other timestamp resumes from the latest
//! completed cursor issued at or before it, which may resend records but
//! never skips one; no timestamp is a full sync.

use std::collections::BTreeMap;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use sync_engine::models::model;
use sync_engine::push::{Mutation, Op, Status};
use tenancy::{TenantTx, stmt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::batch::Batch;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::sync::run_pull;
use crate::state::AppState;
use sync_engine::log::{Ending, Entry, Kind};
use sync_engine::pull::Page;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(token).service(push).service(pull);
}

/// A sign-in, as JSON or as a form (the package's clients send either).
#[derive(Deserialize, ToSchema)]
pub struct LegacyTokenRequest {
    /// The user's e-mail address.
    pub username: String,
    pub password: String,
}

/// Signs in; answers in the package's shape (plus a refresh token).
#[utoipa::path(tag = "sync (compatible)",
    request_body = LegacyTokenRequest, responses((status = 200), (status = 401), (status = 429)))]
#[post("/auth/token/")]
pub async fn token(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    body: web::Either<web::Json<LegacyTokenRequest>, web::Form<LegacyTokenRequest>>,
) -> Result<HttpResponse, ApiError> {
    let b = match body {
        web::Either::Left(json) => json.into_inner(),
        web::Either::Right(form) => form.into_inner(),
    };
    let (tokens, user) =
        crate::auth::sign_in::sign_in(&state, &tenant, &req, &b.username, b.password).await?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let roles = domain::users::roles_of(tx.conn(), user).await?;
    tx.commit().await?;
    let t = &tenant.0;
    Ok(HttpResponse::Ok().json(json!({
        "token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "user": { "id": user, "username": b.username.trim().to_lowercase(), "email": b.username.trim().to_lowercase() },
        "organizations": [{
            "id": t.id(), "name": t.display_name(), "slug": t.slug().as_str(),
            "group": roles.first(),
        }],
    })))
}

/// A push: `{"data": [records with "_model"]}`, or records grouped by
/// model, `{"app.Model": [records]}`. With an `id` of an existing record a
/// record is an update.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LegacyPush {
    Data {
        #[schema(value_type = Vec<Object>)]
        data: Vec<Map<String, serde_json::Value>>,
    },
    #[schema(value_type = Object)]
    ByModel(BTreeMap<String, Vec<Map<String, serde_json::Value>>>),
}

impl LegacyPush {
    /// Every record, each with its `_model`.
    fn records(self) -> Vec<Map<String, serde_json::Value>> {
        match self {
            Self::Data { data } => data,
            Self::ByModel(groups) => groups
                .into_iter()
                .flat_map(|(model, records)| {
                    records.into_iter().map(move |mut r| {
                        r.insert("_model".into(), model.clone().into());
                        r
                    })
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Default)]
struct LegacyCounts {
    created: u64,
    updated: u64,
}

/// Pushes records in the package's shape: a record with the id of an
/// existing record updates it (last writer wins), any other creates one.
#[utoipa::path(tag = "sync (compatible)",
    request_body = LegacyPush, responses((status = 200), (status = 403), (status = 413)),
    security(("bearer" = [])))]
#[post("/push/")]
pub async fn push(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Batch<LegacyPush>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let data = body.into_inner().records();
    let mut errors: Vec<serde_json::Value> = Vec::new();
    let mut mutations: Vec<Mutation> = Vec::with_capacity(data.len());
    let mut names: Vec<String> = Vec::with_capacity(data.len());
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;

    // Which given ids exist, per model, with their versions.
    let mut ids: BTreeMap<&'static str, Vec<Uuid>> = BTreeMap::new();
    for record in &data {
        if let (Some(md), Some(id)) = (
            record
                .get("_model")
                .and_then(|m| m.as_str())
                .and_then(model),
            record
                .get("id")
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok()),
        ) {
            ids.entry(md.table).or_default().push(id);
        }
    }
    let mut versions: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (table, list) in &ids {
        let rows = tx
            .conn()
            .query_all_raw(stmt(
                &format!("SELECT id, version FROM {table} WHERE id = ANY($1::uuid[])"),
                [list.clone().into()],
            ))
            .await?;
        for r in rows {
            versions.insert(r.try_get_by_index(0)?, r.try_get_by_index(1)?);
        }
    }

    for (i, mut record) in data.into_iter().enumerate() {
        let name = record
            .remove("_model")
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_default();
        let Some(md) = model(&name) else {
            errors.push(
                json!({ "index": i, "_model": name, "error": format!("unknown model `{name}`") }),
            );
            continue;
        };
        let given = match record.remove("id") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => {
                match v.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                    Some(id) => Some(id),
                    None => {
                        errors.push(json!({ "index": i, "_model": name, "error": "id: must be a UUID string" }));
                        continue;
                    }
                }
            }
        };
        let id = given.unwrap_or_else(Uuid::now_v7);
        let (op, base_version) = match versions.get(&id) {
            Some(v) => (Op::Update, Some(*v)),
            None => (Op::Create, None),
        };
        names.push(name);
        mutations.push(Mutation {
            mutation_id: mutations.len() as i64 + 1,
            op,
            model: md.name().to_owned(),
            id,
            base_version,
            fields: record,
        });
    }

    let pushed = crate::routes::sync::run_push(&state, &tx, &user, None, &mutations).await?;
    let mut processed: BTreeMap<String, LegacyCounts> = BTreeMap::new();
    let mut success = 0u64;
    for (o, name) in pushed.results.iter().zip(&names) {
        let c = processed.entry(name.clone()).or_default();
        match o.status {
            Status::Created => {
                c.created += 1;
                success += 1;
            }
            Status::Updated => {
                c.updated += 1;
                success += 1;
            }
            _ => errors.push(json!({
                "_model": name, "id": o.id, "error": if o.errors.is_empty() { format!("{:?}", o.status).to_lowercase() } else { o.errors.join("; ") },
            })),
        }
    }
    let entry = Entry {
        user: user.id,
        client: Some("compat"),
        kind: Kind::Push,
        counts: processed
            .iter()
            .map(|(m, c)| (m.clone(), c.created + c.updated))
            .collect(),
        started,
    };
    let status = if errors.is_empty() {
        "success"
    } else if success > 0 {
        "partial"
    } else {
        "error"
    };
    entry
        .record(
            tx.conn(),
            if errors.is_empty() {
                Ending::Ok
            } else {
                Ending::Partial
            },
            None,
        )
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": status,
        "success_count": success,
        "error_count": errors.len(),
        "processed_models": processed,
        "errors": errors,
        "processing_time": started.elapsed().as_secs_f64(),
    })))
}

#[derive(Deserialize, ToSchema)]
pub struct LegacyPull {
    /// Model name to the `last_sync` of the previous pull, or null.
    #[schema(value_type = Object)]
    pub models: BTreeMap<String, Option<String>>,
    /// Most records per model in this answer; default 100, at most 10,000.
    pub batch_size: Option<usize>,
}

/// The cursor a client's timestamp stands for.
async fn cursor_for(
    tx: &TenantTx,
    user: Uuid,
    model: &str,
    since: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(since) = since else {
        return Ok(None);
    };
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(since)
        .map_err(|_| {
            ApiError::field(
                &format!("models.{model}"),
                "must be an ISO 8601 timestamp or null",
            )
        })?
        .with_timezone(&Utc);
    Ok(sync_engine::checkpoints::cursor_at(tx.conn(), user, model, at).await?)
}

/// Pulls in the package's shape, per model from its `last_sync`.
#[utoipa::path(tag = "sync (compatible)",
    request_body = LegacyPull, responses((status = 200), (status = 403), (status = 422)),
    security(("bearer" = [])))]
#[post("/pull/")]
pub async fn pull(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Batch<LegacyPull>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let b = body.into_inner();
    let batch = b.batch_size.unwrap_or(100);
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let mut data: Vec<serde_json::Value> = Vec::new();
    let mut metadata = Map::new();
    let mut counts = BTreeMap::new();
    for (name, since) in &b.models {
        // An unknown model is reported in its own metadata; the others
        // are pulled.
        let Some(md) = model(name) else {
            metadata.insert(
                name.clone(),
                json!({ "count": 0, "error": format!("unknown model `{name}`") }),
            );
            continue;
        };
        let cursor = cursor_for(&tx, user.id, md.name(), since.as_deref()).await?;
        let pulled = run_pull(
            &state,
            &tx,
            tenant.0.id(),
            &user,
            &[md],
            Page {
                cursor: cursor.as_deref(),
                limit: batch,
                device: None,
                tombstones: false,
                flat: false,
            },
        )
        .await?;
        let mut count = 0usize;
        for changes in pulled.changes.values() {
            for raw in changes.created.iter().chain(&changes.updated) {
                if let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str(raw.get()) {
                    obj.insert("_model".into(), name.clone().into());
                    data.push(serde_json::Value::Object(obj));
                    count += 1;
                }
            }
            for id in &changes.deleted {
                data.push(json!({ "_model": name, "id": id, "_deleted": true }));
                count += 1;
            }
        }
        let issued = sync_engine::checkpoints::issue(
            tx.conn(),
            user.id,
            md.name(),
            &state.cursors.encode(&pulled.cursor),
            !pulled.has_more,
        )
        .await?;
        counts.insert(md.name().to_owned(), count as u64);
        metadata.insert(
            name.clone(),
            json!({
                "count": count,
                "last_sync": issued.to_rfc3339_opts(SecondsFormat::Micros, true),
                "user_last_sync": since,
                "has_more": pulled.has_more,
            }),
        );
    }
    let total = data.len();
    Entry {
        user: user.id,
        client: Some("compat"),
        kind: Kind::Pull,
        counts,
        started,
    }
    .record(tx.conn(), Ending::Ok, None)
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "metadata": metadata,
        "batch_info": { "batch_size": batch, "total_records": total },
    })))
}
