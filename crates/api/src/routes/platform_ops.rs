//! Operator routes for work across tenants: platform field sets, their
//! distribution (and its dry run), and the durable jobs that carry it out.
//! On the bare base domain, with an operator token. See docs/operations.md.

use actix_web::{HttpResponse, delete, get, post, put, web};
use domain::custom::merge::Strategy;
use platform::distribution::{self, Preview, Targets};
use platform::field_sets::{self, Draft, FieldSet};
use serde::{Deserialize, Serialize};
use tenancy::jobs::{self, Item, Progress};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::operator::Operator;
use crate::error::ApiError;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_sets)
        .service(show_set)
        .service(create_set)
        .service(update_set)
        .service(delete_set)
        .service(distribute)
        .service(list_jobs)
        .service(show_job)
        .service(cancel_job)
        .service(retry_job);
}

impl From<platform::Error> for ApiError {
    fn from(err: platform::Error) -> Self {
        use platform::Error as E;
        match err {
            E::Invalid(errors) => Self::Validation(errors),
            E::NotFound(what) => Self::NotFound(what),
            E::Conflict(why) => Self::Conflict(why),
            E::Tenancy(e) => e.into(),
            E::Store(e) => e.into(),
            E::Database(e) => e.into(),
        }
    }
}

/// The platform field sets (operators).
#[utoipa::path(tag = "platform", responses((status = 200, body = Vec<FieldSet>)),
    security(("bearer" = [])))]
#[get("/platform/field-sets")]
pub async fn list_sets(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(field_sets::list(&state.db).await?))
}

/// One platform field set (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)),
    responses((status = 200, body = FieldSet), (status = 404)), security(("bearer" = [])))]
#[get("/platform/field-sets/{id}")]
pub async fn show_set(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(field_sets::get(&state.db, *id).await?))
}

/// Authors a platform field set, at version 1 (operators).
#[utoipa::path(tag = "platform", request_body = Draft,
    responses((status = 201, body = FieldSet), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/platform/field-sets")]
pub async fn create_set(
    state: web::Data<AppState>,
    _operator: Operator,
    body: web::Json<Draft>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(field_sets::create(&state.db, &body).await?))
}

/// A platform field set's next version.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetVersion {
    /// The version the change was made against.
    pub version: i32,
    #[serde(flatten)]
    pub draft: Draft,
}

/// Replaces a platform field set if it is still at `version`; tenants get
/// the new version when it is distributed (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)), request_body = SetVersion,
    responses((status = 200, body = FieldSet), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[put("/platform/field-sets/{id}")]
pub async fn update_set(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
    body: web::Json<SetVersion>,
) -> Result<HttpResponse, ApiError> {
    let set = field_sets::update(&state.db, *id, body.version, &body.draft).await?;
    Ok(HttpResponse::Ok().json(set))
}

/// Deletes a platform field set; tenants keep their copies (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[delete("/platform/field-sets/{id}")]
pub async fn delete_set(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    field_sets::delete(&state.db, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A distribution of a platform field set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DistributionRequest {
    pub targets: Targets,
    /// Required unless `dry_run`.
    pub strategy: Option<Strategy>,
    /// Report what each strategy would change in each tenant; write
    /// nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Items run at once (1 to 64, default 4).
    pub concurrency: Option<i32>,
}

/// What a dry run found.
#[derive(Serialize, ToSchema)]
pub struct DryRun {
    pub tenants: Vec<Preview>,
}

/// Distributes a platform field set to tenants as a job (202, the job), or
/// with `dry_run` reports what each strategy would change in each tenant
/// (200) (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)), request_body = DistributionRequest,
    responses((status = 202, body = Progress), (status = 200, body = DryRun), (status = 404),
        (status = 422)),
    security(("bearer" = [])))]
#[post("/platform/field-sets/{id}/distribute")]
pub async fn distribute(
    state: web::Data<AppState>,
    operator: Operator,
    id: web::Path<Uuid>,
    body: web::Json<DistributionRequest>,
) -> Result<HttpResponse, ApiError> {
    let registry = state.resolver.registry();
    if body.dry_run {
        let tenants = distribution::dry_run(registry, *id, &body.targets).await?;
        return Ok(HttpResponse::Ok().json(DryRun { tenants }));
    }
    let strategy = body
        .strategy
        .ok_or_else(|| ApiError::field("strategy", "is required (skip, overwrite or merge)"))?;
    let by = tenancy::operators::email_of(&state.db, operator.id)
        .await?
        .unwrap_or_else(|| operator.id.to_string());
    let job = distribution::start(
        registry,
        *id,
        &body.targets,
        strategy,
        body.concurrency.unwrap_or(4),
        &by,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(jobs::progress(&state.db, job).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobList {
    /// At most this many, newest first (default 50).
    pub limit: Option<u64>,
}

/// The latest jobs and their progress (operators).
#[utoipa::path(tag = "platform", params(JobList), responses((status = 200, body = Vec<Progress>)),
    security(("bearer" = [])))]
#[get("/platform/jobs")]
pub async fn list_jobs(
    state: web::Data<AppState>,
    _operator: Operator,
    q: web::Query<JobList>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    Ok(HttpResponse::Ok().json(jobs::list(&state.db, limit).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobItems {
    /// Only items of this status (`pending`, `done`, `failed`, `cancelled`).
    pub status: Option<String>,
}

/// A job with its progress and items.
#[derive(Serialize, ToSchema)]
pub struct JobDetail {
    #[serde(flatten)]
    pub progress: Progress,
    pub items: Vec<Item>,
}

/// A job's progress (done, failed, pending, rate, ETA) and its items
/// (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path), JobItems),
    responses((status = 200, body = JobDetail), (status = 404)), security(("bearer" = [])))]
#[get("/platform/jobs/{id}")]
pub async fn show_job(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
    q: web::Query<JobItems>,
) -> Result<HttpResponse, ApiError> {
    if let Some(s) = &q.status
        && !matches!(s.as_str(), "pending" | "done" | "failed" | "cancelled")
    {
        return Err(ApiError::field(
            "status",
            "must be pending, done, failed or cancelled",
        ));
    }
    let progress = jobs::progress(&state.db, *id).await?;
    let items = jobs::items(&state.db, *id, q.status.as_deref()).await?;
    Ok(HttpResponse::Ok().json(JobDetail { progress, items }))
}

/// Cancels a job: its pending items are not run (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)),
    responses((status = 200, body = Progress), (status = 404)), security(("bearer" = [])))]
#[post("/platform/jobs/{id}/cancel")]
pub async fn cancel_job(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(jobs::cancel(&state.db, *id).await?))
}

/// Runs a job's failed and cancelled items again (operators).
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)),
    responses((status = 200, body = Progress), (status = 404)), security(("bearer" = [])))]
#[post("/platform/jobs/{id}/retry")]
pub async fn retry_job(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(jobs::retry(&state.db, *id).await?))
}
