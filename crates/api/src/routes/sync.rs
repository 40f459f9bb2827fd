//! The sync API: native PUSH/PULL, the permission matrix and row filters,
//! per-user state and the sync log.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, delete, get, post, put, web};
use domain::roles::{Action, Area};
use serde::{Deserialize, Serialize};
use sync_engine::log::{Ending, Entry, Kind, Line, ModelState};
use sync_engine::models::model;
use sync_engine::pull::{Page, Pulled};
use sync_engine::push::{Mutation, Pushed};
use sync_engine::settings::{self, Filter, Grant};
use tenancy::TenantTx;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::batch::Batch;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(pull)
        .service(push)
        .service(permissions)
        .service(set_permissions)
        .service(filters)
        .service(add_filter)
        .service(remove_filter)
        .service(log)
        .service(state_of_caller);
}

/// The models named in a request, every one checked.
pub fn models(names: &[String]) -> Result<Vec<&'static sync_engine::Model>, ApiError> {
    if names.is_empty() {
        return Ok(sync_engine::models::models().into_iter().collect());
    }
    names
        .iter()
        .map(|n| model(n).ok_or_else(|| ApiError::field("models", format!("unknown model `{n}`"))))
        .collect()
}

/// Logs a refused push or pull in a transaction of its own, and hands the
/// error back.
pub async fn log_failure(
    state: &AppState,
    tenant: &CurrentTenant,
    entry: &Entry<'_>,
    err: ApiError,
) -> ApiError {
    if let Ok(tx) = TenantTx::begin(&state.db, &tenant.0).await {
        // What the client was told: a server error's text stays in the
        // server's log, not in the tenant's sync log.
        let message = if actix_web::ResponseError::status_code(&err).is_server_error() {
            "the server failed to handle this request".to_owned()
        } else {
            err.to_string()
        };
        if entry
            .record(tx.conn(), Ending::Failed, Some(&message))
            .await
            .is_ok()
        {
            let _ = tx.commit().await;
        }
    }
    err
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// From the previous pull; absent for a first (full) sync.
    pub cursor: Option<String>,
    /// Models to pull; all the caller may pull when absent.
    #[serde(default)]
    pub models: Vec<String>,
    /// Records per page, 1 to 10,000; default 1,000.
    pub limit: Option<usize>,
    /// The installation's id, as in its pushes: a first pull then also
    /// brings deletes of records it pushed before, and its own creates
    /// come back as updates.
    pub client_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PullResponse {
    /// Per model: `created` and `updated` records, `deleted` ids.
    #[schema(value_type = Object)]
    pub changes: BTreeMap<&'static str, sync_engine::pull::ModelChanges>,
    pub cursor: String,
    pub has_more: bool,
}

/// Runs a pull for the caller inside `tx`.
pub async fn run_pull(
    state: &AppState,
    tx: &TenantTx,
    tenant: Uuid,
    user: &AuthUser,
    models: &[&'static sync_engine::Model],
    page: Page<'_>,
) -> Result<Pulled, ApiError> {
    let perms = state.rules.permissions(tx, &user.roles).await?;
    Ok(sync_engine::pull::for_caller(
        tx.conn(),
        &state.cursors,
        tenant,
        user.id,
        &perms,
        models,
        page,
    )
    .await?)
}

/// Pulls the changes since a cursor.
#[utoipa::path(tag = "sync", request_body = PullRequest,
    responses((status = 200, body = PullResponse), (status = 403), (status = 410), (status = 422)),
    security(("bearer" = [])))]
#[post("/sync/pull")]
pub async fn pull(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Batch<PullRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut entry = Entry::new(user.id, None, Kind::Pull);
    entry.counts = b.models.iter().map(|m| (m.clone(), 0)).collect();
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let pulled = match models(&b.models) {
        Ok(models) => {
            run_pull(
                &state,
                &tx,
                tenant.0.id(),
                &user,
                &models,
                Page {
                    cursor: b.cursor.as_deref(),
                    limit: b.limit.unwrap_or(1000),
                    device: b.client_id.as_deref(),
                    tombstones: false,
                    flat: false,
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let pulled = match pulled {
        Ok(p) => p,
        Err(e) => {
            tx.rollback().await?;
            return Err(log_failure(&state, &tenant, &entry, e).await);
        }
    };
    entry.counts = pulled
        .changes
        .iter()
        .map(|(m, c)| ((*m).to_owned(), c.len() as u64))
        .collect();
    entry.record(tx.conn(), Ending::Ok, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PullResponse {
        cursor: state.cursors.encode(&pulled.cursor),
        has_more: pulled.has_more,
        changes: pulled.changes,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// A stable id of the client installation.
    pub client_id: String,
    #[schema(value_type = Vec<Object>)]
    pub mutations: Vec<Mutation>,
    /// All or nothing: if any mutation is not applied, none is.
    #[serde(default)]
    pub atomic: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PushResponse {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub pushed: Pushed,
    /// False when `atomic` was asked and the batch was rolled back.
    pub applied: bool,
    pub duration_ms: f64,
}

/// Runs a push for the caller inside `tx`; rolls nothing back itself.
pub async fn run_push(
    state: &AppState,
    tx: &TenantTx,
    user: &AuthUser,
    client_id: Option<&str>,
    mutations: &[Mutation],
) -> Result<Pushed, ApiError> {
    if let Some(device) = client_id {
        // Records it creates are marked as its own (see the pull).
        sync_engine::push::name_device(tx.conn(), device).await?;
    }
    let perms = state.rules.permissions(tx, &user.roles).await?;
    let custom = state.rules.custom(tx).await?;
    Ok(
        sync_engine::push::for_caller(tx.conn(), user.id, &perms, &custom, client_id, mutations)
            .await?,
    )
}

/// Pushes a batch of mutations.
#[utoipa::path(tag = "sync", request_body = PushRequest,
    responses((status = 200, body = PushResponse), (status = 403), (status = 409), (status = 413), (status = 422)),
    security(("bearer" = [])))]
#[post("/sync/push")]
pub async fn push(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Batch<PushRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut entry = Entry::new(user.id, Some(&b.client_id), Kind::Push);
    for m in &b.mutations {
        entry.counts.entry(m.model.clone()).or_insert(0);
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let pushed = match run_push(&state, &tx, &user, Some(&b.client_id), &b.mutations).await {
        Ok(p) => p,
        Err(e) => {
            tx.rollback().await?;
            return Err(log_failure(&state, &tenant, &entry, e).await);
        }
    };
    entry.counts = pushed
        .summary
        .iter()
        .map(|(m, c)| (m.clone(), c.created + c.updated + c.deleted))
        .collect();
    if b.atomic && !pushed.complete {
        tx.rollback().await?;
        let err =
            ApiError::Conflict("the batch was not applied: a mutation conflicted or failed".into());
        let _ = log_failure(&state, &tenant, &entry, err).await;
        return Ok(HttpResponse::Conflict().json(PushResponse {
            pushed,
            applied: false,
            duration_ms: entry.elapsed_ms(),
        }));
    }
    let ending = if pushed.complete {
        Ending::Ok
    } else {
        Ending::Partial
    };
    entry.record(tx.conn(), ending, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PushResponse {
        pushed,
        applied: true,
        duration_ms: entry.elapsed_ms(),
    }))
}

/// Reads in one tenant transaction.
pub(crate) async fn read<T, F>(
    state: &AppState,
    tenant: &CurrentTenant,
    f: F,
) -> Result<T, ApiError>
where
    F: AsyncFnOnce(&TenantTx) -> Result<T, sea_orm::DbErr>,
{
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let out = f(&tx).await?;
    tx.commit().await?;
    Ok(out)
}

async fn matrix(state: &AppState, tenant: &CurrentTenant) -> Result<HttpResponse, ApiError> {
    let rows = read(state, tenant, async |tx| settings::grants(tx.conn()).await).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// The access matrix of roles by models (Administrators).
#[utoipa::path(tag = "sync",
    responses((status = 200, body = Vec<Grant>)), security(("bearer" = [])))]
#[get("/sync/permissions")]
pub async fn permissions(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let rows = read(&state, &tenant, async |tx| {
        settings::grants(tx.conn()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Sets cells of the matrix (Administrators).
#[utoipa::path(tag = "sync",
    request_body = Vec<Grant>,
    responses((status = 200, body = Vec<Grant>), (status = 422)), security(("bearer" = [])))]
#[put("/sync/permissions")]
pub async fn set_permissions(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<Vec<Grant>>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    settings::set_grants(tx.conn(), &body).await?;
    tx.commit().await?;
    matrix(&state, &tenant).await
}

/// Row filters (Administrators).
#[utoipa::path(tag = "sync",
    responses((status = 200, body = Vec<Filter>)), security(("bearer" = [])))]
#[get("/sync/filters")]
pub async fn filters(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let rows = read(&state, &tenant, async |tx| {
        settings::filters(tx.conn()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Adds a row filter (Administrators).
#[utoipa::path(tag = "sync", request_body = Filter,
    responses((status = 201, body = Filter), (status = 422)), security(("bearer" = [])))]
#[post("/sync/filters")]
pub async fn add_filter(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<Filter>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let added = settings::add_filter(tx.conn(), body.into_inner()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(added))
}

/// Removes a row filter (Administrators).
#[utoipa::path(tag = "sync",
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[delete("/sync/filters/{id}")]
pub async fn remove_filter(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let id = id.into_inner();
    let removed = read(&state, &tenant, async |tx| {
        settings::remove_filter(tx.conn(), id).await
    })
    .await?;
    if !removed {
        return Err(ApiError::NotFound("filter"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub user_id: Option<Uuid>,
    /// push or pull.
    #[param(value_type = Option<String>)]
    pub kind: Option<Kind>,
    /// 1 to 500; default 100.
    pub limit: Option<i64>,
}

/// The sync log, newest first (Administrators).
#[utoipa::path(tag = "sync", params(LogQuery),
    responses((status = 200, body = Vec<Line>)), security(("bearer" = [])))]
#[get("/sync/log")]
pub async fn log(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 500"));
    }
    let (who, kind) = (query.user_id, query.kind);
    let lines = read(&state, &tenant, async |tx| {
        sync_engine::log::lines(tx.conn(), who, kind, limit).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(lines))
}

/// The caller's last sync time and counts per model.
#[utoipa::path(tag = "sync",
    responses((status = 200, body = Vec<ModelState>)), security(("bearer" = [])))]
#[get("/sync/state")]
pub async fn state_of_caller(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let me = user.id;
    let rows = read(&state, &tenant, async |tx| {
        sync_engine::log::state_of(tx.conn(), me).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}
