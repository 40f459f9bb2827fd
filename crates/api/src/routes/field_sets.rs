//! The tenant's custom field sets: anyone signed in reads them (clients
//! build their forms from them); Administrators write them. See
//! docs/api.md, "Custom fields".

use actix_web::{HttpResponse, delete, get, post, put, web};
use domain::custom::sets::{self, Draft, FieldSet, Saved};
use domain::roles::{Action, Area};
use serde::Deserialize;
use tenancy::TenantTx;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list)
        .service(show)
        .service(create)
        .service(replace)
        .service(remove);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Which {
    /// Only the sets of this model (`clients`, `contacts`, `tasks`).
    pub model: Option<String>,
}

/// The field sets, by model and name.
#[utoipa::path(tag = "custom fields", params(Which),
    responses((status = 200, body = Vec<FieldSet>)), security(("bearer" = [])))]
#[get("/field-sets")]
pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    _user: AuthUser,
    which: web::Query<Which>,
) -> Result<HttpResponse, ApiError> {
    if let Some(m) = &which.model {
        sets::model_of(m)?;
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let rows = sets::list(tx.conn(), which.model.as_deref()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// One field set.
#[utoipa::path(tag = "custom fields", params(("id" = Uuid, Path)),
    responses((status = 200, body = FieldSet), (status = 404)), security(("bearer" = [])))]
#[get("/field-sets/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    _user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let set = sets::get(tx.conn(), *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(set))
}

/// A new field set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFieldSet {
    /// `clients`, `contacts` or `tasks`.
    pub model: String,
    pub name: String,
    pub label: String,
    /// The field definitions.
    #[schema(value_type = Vec<domain::custom::Definition>)]
    pub fields: serde_json::Value,
}

/// Creates a field set (Administrators).
#[utoipa::path(tag = "custom fields", request_body = NewFieldSet,
    responses((status = 201, body = FieldSet), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/field-sets")]
pub async fn create(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<NewFieldSet>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let b = body.into_inner();
    let draft = Draft {
        model: b.model,
        name: b.name,
        label: b.label,
        fields: b.fields,
    };
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let saved = sets::save(tx.conn(), None, &draft, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(saved.set))
}

/// A field set's new content, replacing the old.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetChange {
    pub name: String,
    pub label: String,
    #[schema(value_type = Vec<domain::custom::Definition>)]
    pub fields: serde_json::Value,
    /// The revision the change was made against.
    pub revision: i64,
}

/// Replaces a field set if it is still at `revision` (Administrators). A
/// removed field whose values records still hold is kept, retired.
#[utoipa::path(tag = "custom fields", params(("id" = Uuid, Path)), request_body = SetChange,
    responses((status = 200, body = Saved), (status = 404), (status = 409), (status = 412),
        (status = 422)),
    security(("bearer" = [])))]
#[put("/field-sets/{id}")]
pub async fn replace(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
    body: web::Json<SetChange>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let b = body.into_inner();
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let model = sets::get(tx.conn(), *id).await?.model;
    let draft = Draft {
        model,
        name: b.name,
        label: b.label,
        fields: b.fields,
    };
    let saved = sets::save(tx.conn(), Some((*id, b.revision)), &draft, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(saved))
}

/// Deletes a field set and its fields' values from every record
/// (Administrators).
#[utoipa::path(tag = "custom fields", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[delete("/field-sets/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    sets::delete(tx.conn(), *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
