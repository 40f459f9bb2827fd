//! The audit trail: the change journal, filtered and paged, as JSON or as
//! streamed CSV, and one record's history. Administrators and Auditors read
//! it; nobody writes it.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, put, web};
use chrono::{DateTime, Utc};
use domain::journal::{self, CHANNELS, CSV_HEADER, Entry, Query};
use domain::roles::{Action, Area};
use serde::{Deserialize, Serialize};
use tenancy::TenantTx;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(trail)
        .service(settings)
        .service(set_settings)
        .service(history);
}

/// How long the tenant's journal keeps entries.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditSettings {
    /// Days an entry is kept, 1 to 36,500; null: the server's default.
    pub retention_days: Option<i32>,
    /// The server's default (`audit.retention_days`).
    #[serde(default, skip_deserializing)]
    pub default_retention_days: u64,
}

async fn answer_settings(
    state: &AppState,
    tenant: &CurrentTenant,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let retention_days = journal::retention(tx.conn()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(AuditSettings {
        retention_days,
        default_retention_days: state.audit.retention_days,
    }))
}

/// The journal's retention (Administrators, Auditors).
#[utoipa::path(tag = "audit",
    responses((status = 200, body = AuditSettings), (status = 403)), security(("bearer" = [])))]
#[get("/audit/settings")]
pub async fn settings(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Audit, Action::Read)?;
    answer_settings(&state, &tenant).await
}

/// Sets the journal's retention (Administrators); entries past it are
/// purged by the server's maintenance loop.
#[utoipa::path(tag = "audit", request_body = AuditSettings,
    responses((status = 200, body = AuditSettings), (status = 403), (status = 422)),
    security(("bearer" = [])))]
#[put("/audit/settings")]
pub async fn set_settings(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<AuditSettings>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    if let Some(days) = body.retention_days
        && !(1..=36_500).contains(&days)
    {
        return Err(ApiError::field(
            "retention_days",
            "must be 1 to 36500, or null",
        ));
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    journal::set_retention(tx.conn(), body.retention_days).await?;
    tx.commit().await?;
    answer_settings(&state, &tenant).await
}

/// Filters of the audit trail.
#[derive(Deserialize, IntoParams)]
pub struct TrailParams {
    /// A model: `clients`, `tasks`, …
    pub model: Option<String>,
    pub record_id: Option<Uuid>,
    /// Changes made by this user.
    pub user_id: Option<Uuid>,
    /// `rest`, `sync`, `job` or `sql`.
    pub channel: Option<String>,
    /// Changes at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Changes before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<i64>,
    /// Entries per page, 1 to 1,000 (default 100). CSV holds them all.
    pub limit: Option<u64>,
}

/// One page of the trail, newest first.
#[derive(Serialize, ToSchema)]
pub struct TrailPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Entry>,
    /// Pass as `cursor` for the next (older) page; null at the end.
    pub next_cursor: Option<i64>,
}

impl TrailParams {
    pub(crate) fn query(&self) -> Result<Query, ApiError> {
        if let Some(m) = &self.model
            && domain::model(m).is_none()
        {
            return Err(ApiError::field("model", format!("unknown model `{m}`")));
        }
        if let Some(c) = &self.channel
            && !CHANNELS.contains(&c.as_str())
        {
            return Err(ApiError::field(
                "channel",
                "must be one of rest, sync, job, sql",
            ));
        }
        let limit = self.limit.unwrap_or(100);
        if !(1..=journal::MAX_PAGE).contains(&limit) {
            return Err(ApiError::field("limit", "must be 1 to 1000"));
        }
        Ok(Query {
            model: self.model.clone(),
            record_id: self.record_id,
            user_id: self.user_id,
            channel: self.channel.clone(),
            from: self.from,
            to: self.to,
            before: self.cursor,
            limit,
        })
    }
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// The audit trail (Administrators, Auditors). With `Accept: text/csv`,
/// every matching entry as CSV, streamed page by page.
#[utoipa::path(tag = "audit", params(TrailParams),
    responses((status = 200, body = TrailPage), (status = 403), (status = 422)),
    security(("bearer" = [])))]
#[get("/audit")]
pub async fn trail(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    params: web::Query<TrailParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Audit, Action::Read)?;
    let query = params.query()?;
    if wants_csv(&req) {
        return Ok(csv(state, tenant, query));
    }
    answer(&state, &tenant, &query).await
}

/// The changes of one record, newest first (Administrators, Auditors).
#[utoipa::path(tag = "audit",
    params(("resource" = String, Path), ("id" = Uuid, Path), TrailParams),
    responses((status = 200, body = TrailPage), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[get("/{resource}/{id}/history")]
pub async fn history(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    path: web::Path<(String, Uuid)>,
    params: web::Query<TrailParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Audit, Action::Read)?;
    let (resource, id) = path.into_inner();
    let md = domain::model(&resource).ok_or(ApiError::NotFound("no such resource"))?;
    let mut query = params.query()?;
    query.model = Some(md.name().to_owned());
    query.record_id = Some(id);
    if wants_csv(&req) {
        return Ok(csv(state, tenant, query));
    }
    answer(&state, &tenant, &query).await
}

async fn answer(
    state: &AppState,
    tenant: &CurrentTenant,
    query: &Query,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let items = journal::page(tx.conn(), query).await?;
    tx.commit().await?;
    let next_cursor = (items.len() as u64 == query.limit)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(TrailPage { items, next_cursor }))
}

/// Every entry of `query` as CSV: one page of 1,000 at a time, each read in
/// a transaction of its own, so memory stays flat however long the trail.
pub(crate) fn csv(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    mut query: Query,
) -> HttpResponse {
    query.limit = journal::MAX_PAGE;
    let header = futures::stream::once(async {
        Ok::<_, ApiError>(Bytes::from_static(CSV_HEADER.as_bytes()))
    });
    let pages = futures::stream::try_unfold(Some(query), move |next| {
        let (state, tenant) = (state.clone(), tenant.0.clone());
        async move {
            let Some(mut query) = next else {
                return Ok(None);
            };
            let tx = TenantTx::begin(&state.db, &tenant).await?;
            let rows = journal::page(tx.conn(), &query).await?;
            tx.commit().await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut chunk = String::with_capacity(rows.len() * 256);
            for row in &rows {
                chunk.push_str(&row.csv_row());
            }
            let more = rows.len() as u64 == query.limit;
            query.before = rows.last().map(|e| e.id);
            Ok::<_, ApiError>(Some((Bytes::from(chunk), more.then_some(query))))
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"audit.csv\"",
        ))
        .streaming(futures::StreamExt::chain(header, pages))
}
