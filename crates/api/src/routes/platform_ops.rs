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
        .service(job_stream)
        .service(cancel_job)
        .service(retry_job)
        .service(metrics)
        .service(create_template)
        .service(list_templates)
        .service(show_template)
        .service(delete_template)
        .service(create_tenant)
        .service(export_tenant)
        .service(import_tenant);
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

/// A template to capture.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    /// 1 to 63 of `a-z`, digits and `-`.
    pub name: String,
    /// The tenant whose configuration it captures.
    pub tenant: String,
    #[serde(default)]
    pub description: String,
    /// Also its records, as sample data (without their links to users).
    #[serde(default)]
    pub include_records: bool,
}

fn slug_of(text: &str) -> Result<tenancy::Slug, ApiError> {
    tenancy::Slug::parse(text).map_err(|_| ApiError::NotFound("tenant"))
}

/// Captures a tenant's roles, sync permission matrix and row filters,
/// journal retention, event types and field sets (and, with
/// `include_records`, its records) as a template (operators).
#[utoipa::path(tag = "platform", request_body = NewTemplate,
    responses((status = 201, body = tenancy::templates::Template), (status = 404), (status = 409),
        (status = 422)),
    security(("bearer" = [])))]
#[post("/platform/templates")]
pub async fn create_template(
    state: web::Data<AppState>,
    operator: Operator,
    body: web::Json<NewTemplate>,
) -> Result<HttpResponse, ApiError> {
    let by = tenancy::operators::email_of(&state.db, operator.id)
        .await?
        .unwrap_or_else(|| operator.id.to_string());
    let template = state
        .resolver
        .registry()
        .capture_template(
            &body.name,
            &body.description,
            &slug_of(&body.tenant)?,
            body.include_records,
            &by,
        )
        .await?;
    Ok(HttpResponse::Created().json(template))
}

/// The templates (operators).
#[utoipa::path(tag = "platform",
    responses((status = 200, body = Vec<tenancy::templates::Template>)),
    security(("bearer" = [])))]
#[get("/platform/templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(tenancy::templates::list(&state.db).await?))
}

/// One template: its source, version and rows per table (operators).
#[utoipa::path(tag = "platform", params(("name" = String, Path)),
    responses((status = 200, body = tenancy::templates::Template), (status = 404)),
    security(("bearer" = [])))]
#[get("/platform/templates/{name}")]
pub async fn show_template(
    state: web::Data<AppState>,
    _operator: Operator,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(tenancy::templates::get(&state.db, &name).await?))
}

/// Deletes a template; tenants made from it are not touched (operators).
#[utoipa::path(tag = "platform", params(("name" = String, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[delete("/platform/templates/{name}")]
pub async fn delete_template(
    state: web::Data<AppState>,
    _operator: Operator,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    tenancy::templates::delete(&state.db, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A tenant an operator creates.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantRequest {
    pub slug: String,
    pub display_name: String,
    /// Provision from this template.
    pub template: Option<String>,
    /// A first administrator, created with the tenant.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub admin_name: Option<String>,
}

/// Creates a tenant, from a template if one is named, with an optional
/// first administrator, in one transaction (operators).
#[utoipa::path(tag = "platform", request_body = NewTenantRequest,
    responses((status = 201, body = Object), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/platform/tenants")]
pub async fn create_tenant(
    state: web::Data<AppState>,
    _operator: Operator,
    body: web::Json<NewTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let made = provision_tenant(&state, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(made))
}

/// Creates the tenant `b` asks for, in one transaction (the operator API
/// and the platform console create tenants here).
pub async fn provision_tenant(
    state: &AppState,
    b: NewTenantRequest,
) -> Result<serde_json::Value, ApiError> {
    let slug = tenancy::Slug::parse(&b.slug).map_err(|e| ApiError::field("slug", e.to_string()))?;
    let mut new = tenancy::NewTenant::new(slug, &b.display_name, &[], &state.base_domain)
        .map_err(|e| ApiError::field("display_name", e.to_string()))?;
    if let Some(t) = &b.template {
        tenancy::templates::get(&state.db, t)
            .await
            .map_err(|_| ApiError::field("template", "is not a template"))?;
        new = new.from_template(t.as_str());
    }
    match (b.admin_email, b.admin_password) {
        (Some(email), Some(password)) => {
            let email =
                domain::validation::email(&email).map_err(|m| ApiError::field("admin_email", m))?;
            let password = domain::password::Password::parse(&password)
                .map_err(|m| ApiError::field("admin_password", m.to_string()))?;
            new = new.with_admin(tenancy::FirstAdmin {
                full_name: b.admin_name.unwrap_or_else(|| email.clone()),
                email,
                password_hash: crate::auth::hashing::hash(password).await?,
            });
        }
        (None, None) => {}
        _ => {
            return Err(ApiError::field(
                "admin_password",
                "give both admin_email and admin_password, or neither",
            ));
        }
    }
    let tenant = state.resolver.registry().create(&new).await?;
    Ok(serde_json::json!({
        "slug": tenant.slug().as_str(),
        "display_name": tenant.display_name(),
        "status": tenant.status().as_str(),
        "template": b.template,
    }))
}

/// The tenant as a portable archive (`application/x-tar`): its tables'
/// rows in COPY format and a signed manifest (operators). See
/// docs/operations.md, "Export and import".
#[utoipa::path(tag = "platform", params(("slug" = String, Path)),
    responses((status = 200, content_type = "application/x-tar"), (status = 404)),
    security(("bearer" = [])))]
#[get("/platform/tenants/{slug}/export")]
pub async fn export_tenant(
    state: web::Data<AppState>,
    _operator: Operator,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_of(&slug)?;
    let mut out = Vec::new();
    state
        .resolver
        .registry()
        .export_tenant(&slug, &state.archive, &mut out)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.tar\"", slug.as_str()),
        ))
        .body(out))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// The new tenant's display name (default: the archive's).
    pub display_name: Option<String>,
}

/// Creates tenant `slug` from an archive sent as the body, atomically:
/// the archive is checked whole first (its signature, every checksum, its
/// schema version), an older one is migrated forward, one from a newer
/// schema refused (operators).
#[utoipa::path(tag = "platform", params(("slug" = String, Path), ImportParams),
    request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 201, body = Object), (status = 409), (status = 413), (status = 422)),
    security(("bearer" = [])))]
#[post("/platform/tenants/{slug}/import")]
pub async fn import_tenant(
    state: web::Data<AppState>,
    _operator: Operator,
    slug: web::Path<String>,
    params: web::Query<ImportParams>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures::StreamExt;
    let slug = tenancy::Slug::parse(&slug).map_err(|e| ApiError::field("slug", e.to_string()))?;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadBody(e.to_string()))?;
        if body.len() + chunk.len() > state.archive_max_bytes {
            return Err(ApiError::TooLarge(format!(
                "archives are limited to {} bytes here (archive.max_upload_mib); \
                 `migrator tenant import` takes any size",
                state.archive_max_bytes
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let (manifest, _) = tenancy::archive::read_archive(&state.archive, body.as_slice())
        .map_err(|e| ApiError::field("archive", e.to_string()))?;
    let name = params
        .display_name
        .clone()
        .unwrap_or(manifest.display_name.clone());
    let new = tenancy::NewTenant::new(slug, &name, &[], &state.base_domain)
        .map_err(|e| ApiError::field("display_name", e.to_string()))?;
    let imported = state
        .resolver
        .registry()
        .import_tenant(&new, &state.archive, body.as_slice())
        .await
        .map_err(|e| match e {
            e @ (tenancy::Error::Archive(_) | tenancy::Error::ArchiveNewer(_)) => {
                ApiError::field("archive", e.to_string())
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(imported))
}

/// A job's progress as server-sent events (operators): an `event:
/// progress` with the job (as `GET /platform/jobs/{id}` without items)
/// whenever it changes, at most twice a second, and a last one when it is
/// no longer running; then the stream ends.
#[utoipa::path(tag = "platform", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "text/event-stream"), (status = 404)),
    security(("bearer" = [])))]
#[get("/platform/jobs/{id}/stream")]
pub async fn job_stream(
    state: web::Data<AppState>,
    _operator: Operator,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let first = jobs::progress(&state.db, *id).await?;
    let db = state.db.clone();
    let id = *id;
    // (the last JSON sent, whether the stream is over)
    let events = futures::stream::unfold(
        (Some(first), String::new(), false),
        move |(next, last, over)| {
            let db = db.clone();
            async move {
                if over {
                    return None;
                }
                let mut progress = next;
                loop {
                    let p = match progress.take() {
                        Some(p) => p,
                        None => {
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                            match jobs::progress(&db, id).await {
                                Ok(p) => p,
                                Err(_) => return None,
                            }
                        }
                    };
                    let json = serde_json::to_string(&p).unwrap_or_default();
                    let done = p.status != "running";
                    if json != last || done {
                        let event = format!("event: progress\ndata: {json}\n\n");
                        return Some((
                            Ok::<_, actix_web::Error>(web::Bytes::from(event)),
                            (None, json, done),
                        ));
                    }
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        // Not compressed: a compressor holds events back until it has
        // enough to write.
        .insert_header(("content-encoding", "identity"))
        .streaming(events))
}

/// Platform figures: tenants by status, jobs at work, the database's size
/// and connections (operators).
#[utoipa::path(tag = "platform", responses((status = 200, body = platform::metrics::Metrics)),
    security(("bearer" = [])))]
#[get("/platform/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(platform::metrics::read(&state.db).await?))
}
