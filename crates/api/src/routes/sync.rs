//! The sync API: native PUSH/PULL, the permission matrix and row filters,
//! per-user state and the sync log.

use std::collections::BTreeMap;
use std::time::Instant;

use actix_web::{HttpResponse, web};
use domain::access::Operator;
use domain::roles::{Action, Area};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sync_engine::models::model;
use sync_engine::pull::Pulled;
use sync_engine::push::{Mutation, Pushed};
use sync_engine::{Permissions, SyncError};
use tenancy::{TenantTx, stmt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::crud;
use crate::state::AppState;

crate::routes::routes! {
    post "/sync/pull" => pull;
    post "/sync/push" => push;
    get "/sync/permissions" => permissions;
    put "/sync/permissions" => set_permissions;
    get "/sync/filters" => filters;
    post "/sync/filters" => add_filter;
    delete "/sync/filters/{id}" => remove_filter;
    get "/sync/log" => log;
    get "/sync/state" => state_of_caller;
}

/// Most records one pull page returns.
pub const MAX_PAGE: usize = 10_000;

impl From<SyncError> for ApiError {
    fn from(err: SyncError) -> Self {
        match err {
            SyncError::UnknownModel(m) => ApiError::field("models", format!("unknown model `{m}`")),
            SyncError::BadCursor(why) => ApiError::field("cursor", why),
            SyncError::ResetRequired => ApiError::Gone("reset_required", err.to_string()),
            SyncError::Forbidden { .. } | SyncError::ForeignClient(_) => {
                ApiError::ForbiddenText(err.to_string())
            }
            SyncError::BadRequest(why) => ApiError::BadBody(why),
            SyncError::TooLarge { .. } => ApiError::TooLarge(err.to_string()),
            SyncError::Database(e) => e.into(),
        }
    }
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

/// One push or pull, for the log.
pub struct LogEntry<'a> {
    pub user: Uuid,
    pub client: Option<&'a str>,
    pub kind: &'static str,
    pub counts: BTreeMap<String, u64>,
    pub started: Instant,
}

impl LogEntry<'_> {
    /// Records the entry in the log and the caller's per-model state.
    pub async fn record(
        &self,
        tx: &TenantTx,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), ApiError> {
        let models: Vec<String> = self.counts.keys().cloned().collect();
        let duration = self.started.elapsed().as_secs_f64() * 1000.0;
        tx.conn()
            .execute_raw(stmt(
                "INSERT INTO sync_log (id, user_id, client_id, kind, models, counts, status, duration_ms, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                [
                    Uuid::now_v7().into(),
                    self.user.into(),
                    self.client.map(str::to_owned).into(),
                    self.kind.into(),
                    models.clone().into(),
                    serde_json::to_value(&self.counts).unwrap_or_default().into(),
                    status.into(),
                    duration.into(),
                    error.map(str::to_owned).into(),
                ],
            ))
            .await?;
        if status == "failed" {
            return Ok(());
        }
        let column = self.kind;
        let amounts: Vec<i64> = self.counts.values().map(|&v| v as i64).collect();
        tx.conn()
            .execute_raw(stmt(
                &format!(
                    "INSERT INTO sync_user_state (user_id, model, last_{column}_at, {column}ed) \
                     SELECT $1, m, now(), n FROM unnest($2::text[], $3::bigint[]) AS x(m, n) \
                     ON CONFLICT (user_id, model) DO UPDATE \
                     SET last_{column}_at = now(), {column}ed = sync_user_state.{column}ed + EXCLUDED.{column}ed"
                ),
                [self.user.into(), models.into(), amounts.into()],
            ))
            .await?;
        Ok(())
    }

    /// Logs a refused push or pull in a transaction of its own, and hands
    /// the error back.
    pub async fn failed(
        &self,
        state: &AppState,
        tenant: &CurrentTenant,
        err: ApiError,
    ) -> ApiError {
        if let Ok(tx) = TenantTx::begin(&state.db, &tenant.0).await {
            let message = err.to_string();
            if self.record(&tx, "failed", Some(&message)).await.is_ok() {
                let _ = tx.commit().await;
            }
        }
        err
    }
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
    cursor: Option<&str>,
    limit: usize,
) -> Result<Pulled, ApiError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let cursor = cursor
        .map(|c| state.cursors.decode(c, tenant))
        .transpose()?;
    let perms = Permissions::load(tx.conn(), &user.roles).await?;
    Ok(sync_engine::pull::pull(tx.conn(), tenant, user.id, &perms, models, cursor, limit).await?)
}

/// Pulls the changes since a cursor.
#[utoipa::path(post, path = "/api/v1/sync/pull", tag = "sync", request_body = PullRequest,
    responses((status = 200, body = PullResponse), (status = 403), (status = 410), (status = 422)),
    security(("bearer" = [])))]
pub async fn pull(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<PullRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut entry = LogEntry {
        user: user.id,
        client: None,
        kind: "pull",
        counts: b.models.iter().map(|m| (m.clone(), 0)).collect(),
        started: Instant::now(),
    };
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let pulled = match models(&b.models) {
        Ok(models) => {
            run_pull(
                &state,
                &tx,
                tenant.0.id(),
                &user,
                &models,
                b.cursor.as_deref(),
                b.limit.unwrap_or(1000),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let pulled = match pulled {
        Ok(p) => p,
        Err(e) => {
            tx.rollback().await?;
            return Err(entry.failed(&state, &tenant, e).await);
        }
    };
    entry.counts = pulled
        .changes
        .iter()
        .map(|(m, c)| ((*m).to_owned(), c.len() as u64))
        .collect();
    entry.record(&tx, "ok", None).await?;
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
    tx: &TenantTx,
    user: &AuthUser,
    client_id: &str,
    mutations: &[Mutation],
) -> Result<Pushed, ApiError> {
    if client_id.is_empty() || client_id.len() > 200 {
        return Err(ApiError::field("client_id", "must be 1 to 200 characters"));
    }
    let perms = Permissions::load(tx.conn(), &user.roles).await?;
    Ok(sync_engine::push::push(tx.conn(), user.id, &perms, Some(client_id), mutations).await?)
}

/// Pushes a batch of mutations.
#[utoipa::path(post, path = "/api/v1/sync/push", tag = "sync", request_body = PushRequest,
    responses((status = 200, body = PushResponse), (status = 403), (status = 409), (status = 413), (status = 422)),
    security(("bearer" = [])))]
pub async fn push(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<PushRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut entry = LogEntry {
        user: user.id,
        client: Some(&b.client_id),
        kind: "push",
        counts: BTreeMap::new(),
        started: Instant::now(),
    };
    for m in &b.mutations {
        entry.counts.entry(m.model.clone()).or_insert(0);
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let pushed = match run_push(&tx, &user, &b.client_id, &b.mutations).await {
        Ok(p) => p,
        Err(e) => {
            tx.rollback().await?;
            return Err(entry.failed(&state, &tenant, e).await);
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
        let _ = entry.failed(&state, &tenant, err).await;
        return Ok(HttpResponse::Conflict().json(PushResponse {
            pushed,
            applied: false,
            duration_ms: entry.started.elapsed().as_secs_f64() * 1000.0,
        }));
    }
    let status = if pushed.complete { "ok" } else { "partial" };
    entry.record(&tx, status, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PushResponse {
        pushed,
        applied: true,
        duration_ms: entry.started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[derive(Serialize, Deserialize, FromQueryResult, ToSchema)]
pub struct PermissionRow {
    pub role: String,
    pub model: String,
    pub can_pull: bool,
    pub can_push: bool,
}

/// The matrix of roles by models (Administrators).
#[utoipa::path(get, path = "/api/v1/sync/permissions", tag = "sync",
    responses((status = 200, body = Vec<PermissionRow>)), security(("bearer" = [])))]
pub async fn permissions(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let rows: Vec<PermissionRow> = crud::read_all(
        &state,
        &tenant.0,
        "SELECT r.name AS role, p.model, p.can_pull, p.can_push FROM sync_permissions p \
         JOIN roles r ON r.id = p.role_id ORDER BY r.name, p.model",
        vec![],
    )
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Sets cells of the matrix (Administrators).
#[utoipa::path(put, path = "/api/v1/sync/permissions", tag = "sync",
    request_body = Vec<PermissionRow>,
    responses((status = 200, body = Vec<PermissionRow>), (status = 422)), security(("bearer" = [])))]
pub async fn set_permissions(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<Vec<PermissionRow>>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let mut errors = domain::FieldErrors::new();
    for (i, p) in body.iter().enumerate() {
        if model(&p.model).is_none() {
            errors.add(
                &format!("[{i}].model"),
                format!("unknown model `{}`", p.model),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    for (i, p) in body.iter().enumerate() {
        let name = model(&p.model).map_or("", |m| m.name());
        let res = tx
            .conn()
            .execute_raw(stmt(
                "INSERT INTO sync_permissions (role_id, model, can_pull, can_push) \
                 SELECT id, $2, $3, $4 FROM roles WHERE name = $1 \
                 ON CONFLICT (role_id, model) DO UPDATE SET can_pull = $3, can_push = $4",
                [
                    p.role.clone().into(),
                    name.into(),
                    p.can_pull.into(),
                    p.can_push.into(),
                ],
            ))
            .await?;
        if res.rows_affected() == 0 {
            errors.add(
                &format!("[{i}].role"),
                format!("`{}` is not a role of this tenant", p.role),
            );
        }
    }
    if !errors.is_empty() {
        tx.rollback().await?;
        return Err(errors.into());
    }
    tx.commit().await?;
    permissions(state, tenant, user).await
}

#[derive(Serialize, Deserialize, FromQueryResult, ToSchema)]
pub struct FilterRow {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub role: String,
    pub model: String,
    pub field: String,
    /// eq, ne, in (comma-separated values), is_null or not_null.
    pub operator: String,
    /// `$user` stands for the caller's id.
    pub value: Option<String>,
}

/// Row filters (Administrators).
#[utoipa::path(get, path = "/api/v1/sync/filters", tag = "sync",
    responses((status = 200, body = Vec<FilterRow>)), security(("bearer" = [])))]
pub async fn filters(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let rows: Vec<FilterRow> = crud::read_all(
        &state,
        &tenant.0,
        "SELECT f.id, r.name AS role, f.model, f.field, f.operator, f.value FROM sync_filters f \
         JOIN roles r ON r.id = f.role_id ORDER BY r.name, f.model, f.created_at",
        vec![],
    )
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Adds a row filter (Administrators).
#[utoipa::path(post, path = "/api/v1/sync/filters", tag = "sync", request_body = FilterRow,
    responses((status = 201, body = FilterRow), (status = 422)), security(("bearer" = [])))]
pub async fn add_filter(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<FilterRow>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let mut f = body.into_inner();
    let mut errors = domain::FieldErrors::new();
    match model(&f.model) {
        None => errors.add("model", format!("unknown model `{}`", f.model)),
        Some(m) => {
            f.model = m.name().to_owned();
            if m.field(&f.field).is_none() {
                errors.add(
                    "field",
                    format!("`{}` is not a field of {}", f.field, m.name()),
                );
            }
        }
    }
    match Operator::parse(&f.operator) {
        None => errors.add("operator", "must be eq, ne, in, is_null or not_null"),
        Some(Operator::Eq | Operator::Ne | Operator::In) if f.value.is_none() => {
            errors.add("value", "is required for this operator");
        }
        Some(_) => {}
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let id = Uuid::now_v7();
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let res = tx
        .conn()
        .execute_raw(stmt(
            "INSERT INTO sync_filters (id, role_id, model, field, operator, value) \
             SELECT $1, id, $3, $4, $5, $6 FROM roles WHERE name = $2",
            [
                id.into(),
                f.role.clone().into(),
                f.model.clone().into(),
                f.field.clone().into(),
                f.operator.clone().into(),
                f.value.clone().into(),
            ],
        ))
        .await?;
    if res.rows_affected() == 0 {
        tx.rollback().await?;
        return Err(ApiError::field(
            "role",
            format!("`{}` is not a role of this tenant", f.role),
        ));
    }
    tx.commit().await?;
    f.id = Some(id);
    Ok(HttpResponse::Created().json(f))
}

/// Removes a row filter (Administrators).
#[utoipa::path(delete, path = "/api/v1/sync/filters/{id}", tag = "sync",
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn remove_filter(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let res = tx
        .conn()
        .execute_raw(stmt(
            "DELETE FROM sync_filters WHERE id = $1",
            [id.into_inner().into()],
        ))
        .await?;
    tx.commit().await?;
    if res.rows_affected() == 0 {
        return Err(ApiError::NotFound("filter"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    pub user_id: Option<Uuid>,
    /// push or pull.
    pub kind: Option<String>,
    /// 1 to 500; default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct LogRow {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub kind: String,
    pub models: Vec<String>,
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    pub status: String,
    pub duration_ms: f64,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The sync log, newest first (Administrators).
#[utoipa::path(get, path = "/api/v1/sync/log", tag = "sync", params(LogQuery),
    responses((status = 200, body = Vec<LogRow>)), security(("bearer" = [])))]
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
    let rows: Vec<LogRow> = crud::read_all(
        &state,
        &tenant.0,
        "SELECT id, user_id, client_id, kind, models, counts, status, duration_ms, error, created_at \
         FROM sync_log WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR kind = $2) \
         ORDER BY created_at DESC LIMIT $3",
        vec![query.user_id.into(), query.kind.clone().into(), limit.into()],
    )
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct StateRow {
    pub model: String,
    pub last_pull_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_push_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pulled: i64,
    pub pushed: i64,
}

/// The caller's last sync time and counts per model.
#[utoipa::path(get, path = "/api/v1/sync/state", tag = "sync",
    responses((status = 200, body = Vec<StateRow>)), security(("bearer" = [])))]
pub async fn state_of_caller(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let rows: Vec<StateRow> = crud::read_all(
        &state,
        &tenant.0,
        "SELECT model, last_pull_at, last_push_at, pulled, pushed FROM sync_user_state \
         WHERE user_id = $1 ORDER BY model",
        vec![user.id.into()],
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!(rows)))
}
