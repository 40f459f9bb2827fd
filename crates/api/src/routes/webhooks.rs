//! Webhook endpoints and their deliveries (Administrators), and the event
//! types there are. See docs/events.md.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use domain::events::{self, EventType};
use domain::roles::{Action, Area};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};
use tenancy::{TenantTx, stmt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::operator::Operator;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::sync::read;
use crate::state::AppState;
use crate::webhooks;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(types)
        .service(add_type)
        .service(change_type)
        .service(remove_type)
        .service(queue)
        .service(pause)
        .service(resume)
        .service(platform_queue)
        .service(platform_pause)
        .service(platform_resume)
        .service(list)
        .service(create)
        .service(remove)
        .service(deliveries)
        .service(test_event)
        .service(retry)
        .service(discard);
}

/// The event types (Administrators).
#[utoipa::path(tag = "events", responses((status = 200, body = Vec<EventType>)),
    security(("bearer" = [])))]
#[get("/events/types")]
pub async fn types(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let rows = events::list(tx.conn()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFieldType {
    /// A model, e.g. `clients`.
    pub model: String,
    /// One of its public fields, e.g. `city`.
    pub field: String,
}

/// Tracks the updates of one field as an event type,
/// `<model>.<field>.updated` (Administrators).
#[utoipa::path(tag = "events", request_body = NewFieldType,
    responses((status = 201, body = EventType), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/events/types")]
pub async fn add_type(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<NewFieldType>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let made = events::add_field(tx.conn(), &body.model, &body.field).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(made))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeChange {
    pub enabled: bool,
}

/// Enables or disables an event type (Administrators).
#[utoipa::path(tag = "events", params(("name" = String, Path)), request_body = TypeChange,
    responses((status = 200, body = EventType), (status = 404)), security(("bearer" = [])))]
#[patch("/events/types/{name}")]
pub async fn change_type(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    name: web::Path<String>,
    body: web::Json<TypeChange>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let changed = events::set_enabled(tx.conn(), &name, body.enabled).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(changed))
}

/// Removes a field's event type (Administrators); a model's own types can
/// be disabled, not removed.
#[utoipa::path(tag = "events", params(("name" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
#[delete("/events/types/{name}")]
pub async fn remove_type(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    events::remove_field(tx.conn(), &name).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    /// Signs deliveries (`whsec_` and base64, as Standard Webhooks).
    pub secret: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// An http or https URL outside the network (see `events.allow_targets`).
    pub url: String,
    /// Event types to receive; `*` for all.
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

const ENDPOINT_COLUMNS: &str = "id, url, event_types, secret, active, created_at";

/// Webhook endpoints (Administrators).
#[utoipa::path(tag = "events", responses((status = 200, body = Vec<Endpoint>)),
    security(("bearer" = [])))]
#[get("/webhooks")]
pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let rows = read(&state, &tenant, async |tx| endpoints(tx.conn()).await).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// The tenant's endpoints, oldest first (the API and the console list them
/// here).
pub async fn endpoints(conn: &impl ConnectionTrait) -> Result<Vec<Endpoint>, sea_orm::DbErr> {
    Endpoint::find_by_statement(stmt(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at"),
        [],
    ))
    .all(conn)
    .await
}

/// Registers an endpoint (Administrators); its secret is in the answer.
#[utoipa::path(tag = "events", request_body = NewEndpoint,
    responses((status = 201, body = Endpoint), (status = 422)), security(("bearer" = [])))]
#[post("/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let row = add_endpoint(&state, &tenant, &body).await?;
    Ok(HttpResponse::Created().json(row))
}

/// Checks and registers an endpoint (the API and the console add them
/// here): its URL must reach outside the network, its types exist.
pub async fn add_endpoint(
    state: &AppState,
    tenant: &CurrentTenant,
    body: &NewEndpoint,
) -> Result<Endpoint, ApiError> {
    if body.url.len() > 2000 || domain::check::parameter(&body.url, 2000).is_err() {
        return Err(ApiError::field(
            "url",
            "must be a URL of at most 2000 characters",
        ));
    }
    let url = reqwest::Url::parse(&body.url)
        .map_err(|e| ApiError::field("url", format!("is not a URL: {e}")))?;
    webhooks::check_target(&url, &state.allowed_targets)
        .await
        .map_err(|e| ApiError::field("url", e.to_string()))?;
    if body.event_types.is_empty() || body.event_types.len() > 100 {
        return Err(ApiError::field(
            "event_types",
            "must name 1 to 100 types, or `*`",
        ));
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let known = tx
        .conn()
        .query_one_raw(stmt(
            "SELECT count(*) FROM event_types WHERE name = ANY($1)",
            [body.event_types.clone().into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    let stars = body.event_types.iter().filter(|t| *t == "*").count() as i64;
    if known + stars != body.event_types.len() as i64 {
        return Err(ApiError::field(
            "event_types",
            "holds an unknown type (see GET /api/v1/events/types)",
        ));
    }
    let row = Endpoint::find_by_statement(stmt(
        &format!(
            "INSERT INTO webhook_endpoints (id, url, event_types, secret, active) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {ENDPOINT_COLUMNS}"
        ),
        [
            Uuid::now_v7().into(),
            url.to_string().into(),
            body.event_types.clone().into(),
            webhooks::new_secret().into(),
            body.active.into(),
        ],
    ))
    .one(tx.conn())
    .await?
    .ok_or_else(|| ApiError::Internal("insert returned nothing".into()))?;
    tx.commit().await?;
    Ok(row)
}

/// Removes an endpoint and its deliveries (Administrators).
#[utoipa::path(tag = "events", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[delete("/webhooks/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    delete_one(
        &state,
        &tenant,
        "DELETE FROM webhook_endpoints WHERE id = $1",
        id.into_inner().into(),
        "no such webhook endpoint",
    )
    .await
}

/// Runs `sql`, a DELETE of one row by `$1`, in the tenant's transaction:
/// 204, or 404 saying `missing` when it deleted nothing.
async fn delete_one(
    state: &AppState,
    tenant: &CurrentTenant,
    sql: &str,
    id: sea_orm::Value,
    missing: &'static str,
) -> Result<HttpResponse, ApiError> {
    let gone = read(state, tenant, async |tx| {
        tx.conn().execute_raw(stmt(sql, [id])).await
    })
    .await?;
    if gone.rows_affected() == 0 {
        return Err(ApiError::NotFound(missing));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    /// PENDING, PROCESSING, COMPLETED or FAILED.
    pub status: String,
    pub attempts: i32,
    pub next_at: DateTime<Utc>,
    pub response_code: Option<i32>,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// An endpoint's latest 100 deliveries, newest first (Administrators).
#[utoipa::path(tag = "events", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Delivery>)), security(("bearer" = [])))]
#[get("/webhooks/{id}/deliveries")]
pub async fn deliveries(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let rows = read(&state, &tenant, async |tx| {
        endpoint_deliveries(tx.conn(), id.into_inner()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// An endpoint's latest 100 deliveries, newest first.
pub async fn endpoint_deliveries(
    conn: &impl ConnectionTrait,
    endpoint: Uuid,
) -> Result<Vec<Delivery>, sea_orm::DbErr> {
    Delivery::find_by_statement(stmt(
        "SELECT d.id, d.event_id, e.type AS event_type, d.status, d.attempts, d.next_at, \
                d.response_code, d.latency_ms, d.last_error, d.created_at, d.completed_at \
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT 100",
        [endpoint.into()],
    ))
    .all(conn)
    .await
}

/// Queues a `webhook.test` event to endpoint `endpoint` alone (signed and
/// sent like any other): the delivery's id, or None without such an
/// endpoint.
pub async fn send_test_event(
    conn: &impl ConnectionTrait,
    schema: &str,
    endpoint: Uuid,
) -> Result<Option<i64>, sea_orm::DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "WITH e AS (INSERT INTO events (type, journal_id, payload) \
                        SELECT 'webhook.test', 0, jsonb_build_object('type', 'webhook.test', \
                               'endpoint_id', w.id, 'at', now()) \
                          FROM webhook_endpoints w WHERE w.id = $1 RETURNING id) \
             INSERT INTO webhook_deliveries (event_id, endpoint_id) \
             SELECT e.id, $1 FROM e RETURNING id",
            [endpoint.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    conn.execute_raw(stmt(
        "SELECT public.signal_events($1, now())",
        [schema.into()],
    ))
    .await?;
    Ok(Some(row.try_get_by_index(0)?))
}

/// Sends a `webhook.test` event to one endpoint (Administrators).
#[utoipa::path(tag = "events", params(("id" = Uuid, Path)),
    responses((status = 202), (status = 404)), security(("bearer" = [])))]
#[post("/webhooks/{id}/test")]
pub async fn test_event(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let schema = tenant.0.schema().as_str().to_owned();
    let sent = read(&state, &tenant, async |tx| {
        send_test_event(tx.conn(), &schema, *id).await
    })
    .await?;
    match sent {
        Some(delivery) => {
            Ok(HttpResponse::Accepted().json(serde_json::json!({ "delivery": delivery })))
        }
        None => Err(ApiError::NotFound("no such webhook endpoint")),
    }
}

/// Sends a FAILED delivery again, from its first attempt (Administrators).
#[utoipa::path(tag = "events", params(("id" = i64, Path)),
    responses((status = 202), (status = 404)), security(("bearer" = [])))]
#[post("/webhooks/deliveries/{id}/retry")]
pub async fn retry(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let retried = webhooks::retry(tx.conn(), tenant.0.schema().as_str(), id.into_inner()).await?;
    tx.commit().await?;
    if !retried {
        return Err(ApiError::NotFound("no failed delivery with this id"));
    }
    Ok(HttpResponse::Accepted().finish())
}

/// The tenant's delivery queue: paused or not, waiting deliveries, the age
/// of the oldest, dead letters (Administrators).
#[utoipa::path(tag = "events", responses((status = 200, body = Object)),
    security(("bearer" = [])))]
#[get("/events/queue")]
pub async fn queue(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let state_now = read(&state, &tenant, async |tx| {
        tenancy::deliveries::tenant(tx.conn()).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(state_now))
}

async fn set_paused(
    state: &AppState,
    tenant: &CurrentTenant,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    tenancy::deliveries::set_tenant_paused(tx.conn(), tenant.0.schema().as_str(), paused).await?;
    let state_now = tenancy::deliveries::tenant(tx.conn()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(state_now))
}

/// Pauses the tenant's deliveries: events and deliveries are still made,
/// and go out on resume (Administrators).
#[utoipa::path(tag = "events", responses((status = 200, body = Object)),
    security(("bearer" = [])))]
#[post("/events/pause")]
pub async fn pause(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    set_paused(&state, &tenant, true).await
}

/// Resumes the tenant's deliveries (Administrators).
#[utoipa::path(tag = "events", responses((status = 200, body = Object)),
    security(("bearer" = [])))]
#[post("/events/resume")]
pub async fn resume(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    set_paused(&state, &tenant, false).await
}

async fn platform_state(state: &AppState) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(tenancy::deliveries::platform(&state.db).await?))
}

/// Deliveries on the whole platform (operators).
#[utoipa::path(tag = "platform", responses((status = 200, body = Object)),
    security(("bearer" = [])))]
#[get("/platform/events")]
pub async fn platform_queue(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    platform_state(&state).await
}

/// Pauses deliveries on the whole platform, for maintenance (operators):
/// events are still made, and go out on resume.
#[utoipa::path(tag = "platform", responses((status = 200, body = Object)),
    security(("bearer" = [])))]
#[post("/platform/events/pause")]
pub async fn platform_pause(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    tenancy::deliveries::set_platform_paused(&state.db, true).await?;
    platform_state(&state).await
}

/// Resumes deliveries on the whole platform (operators).
#[utoipa::path(tag = "platform", responses((status = 200, body = Object)),
    security(("bearer" = [])))]
#[post("/platform/events/resume")]
pub async fn platform_resume(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    tenancy::deliveries::set_platform_paused(&state.db, false).await?;
    platform_state(&state).await
}

/// Discards a FAILED delivery: it is kept no longer (Administrators).
#[utoipa::path(tag = "events", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[delete("/webhooks/deliveries/{id}")]
pub async fn discard(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    delete_one(
        &state,
        &tenant,
        "DELETE FROM webhook_deliveries WHERE id = $1 AND status = 'FAILED'",
        id.into_inner().into(),
        "no failed delivery with this id",
    )
    .await
}
