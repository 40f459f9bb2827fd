//! Users of the tenant and their roles, over REST. The user record goes
//! through the same service as every CRM record (so the same checks and
//! access policy as a sync push of `users`); passwords and role membership
//! are the extras only this path offers. The last active administrator is
//! kept by the tenant schema itself, whoever writes.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use domain::password::Password;
use domain::record::{Naming, USERS};
use domain::service;
use domain::users as users_service;
use sea_orm::FromQueryResult;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tenancy::TenantTx;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::records::{self, Acting, Body, Page, permissions, take_id, with_etag};
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(show)
        .service(update)
        .service(remove)
        .service(set_roles)
        .service(roles);
}

records::record_schemas!(USERS, User, UserRecordCreate, UserRecordPatch, UserQuery);

/// A user create body: the record's fields, and optionally a password and
/// role names.
pub struct UserCreate;
impl utoipa::PartialSchema for UserCreate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        user_body(crate::schema::Shape::Create)
    }
}
impl ToSchema for UserCreate {}

/// A user PATCH body: the record's fields, and optionally a new password.
pub struct UserPatch;
impl utoipa::PartialSchema for UserPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        user_body(crate::schema::Shape::Patch)
    }
}
impl ToSchema for UserPatch {}

fn user_body(
    shape: crate::schema::Shape,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let mut obj = crate::schema::object(&USERS, shape).property(
        "password",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(8))
            .max_length(Some(128))
            .description(Some(
                "Absent on create: the user cannot sign in until one is set.",
            )),
    );
    if shape == crate::schema::Shape::Create {
        obj = obj.property(
            "roles",
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("Role names; default `[\"Users\"]`.")),
        );
    }
    utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(obj.build()))
}

/// The password of a body, taken out of it and checked.
fn take_password(body: &mut Map<String, Value>) -> Result<Option<Password>, ApiError> {
    match body.remove("password") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(p)) => Password::parse(&p)
            .map(Some)
            .map_err(|e| ApiError::field("password", e)),
        Some(_) => Err(ApiError::malformed("password", "must be a string")),
    }
}

async fn hash_of(password: Option<Password>) -> Result<Option<String>, ApiError> {
    match password {
        Some(p) => Ok(Some(crate::auth::hashing::hash(p).await?)),
        None => Ok(None),
    }
}

/// GET /api/v1/users
#[utoipa::path(tag = "users", params(UserQuery),
    responses((status = 200, body = Page<User>), (status = 400), (status = 422)),
    security(("bearer" = [])))]
#[get("/users")]
pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    records::list(&state, &tenant, &user, &USERS, &query).await
}

/// GET /api/v1/users/{id}
#[utoipa::path(tag = "users",
    responses((status = 200, body = User), (status = 404)), security(("bearer" = [])))]
#[get("/users/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    records::show(&state, &tenant, &user, &USERS, *id).await
}

/// POST /api/v1/users (Administrators)
#[utoipa::path(tag = "users", request_body = UserCreate,
    responses((status = 201, body = User), (status = 403), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/users")]
pub async fn create(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (found, version) = create_user(&state, &tenant, &user, body.into_inner()).await?;
    Ok(with_etag(HttpResponse::Created(), found, version))
}

/// Creates a user from a create body (its fields, `password` and `roles`)
/// for `user`, in one transaction: the user as JSON, and its version.
/// REST and the console both create users here.
pub async fn create_user(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    mut body: Map<String, Value>,
) -> Result<(String, i64), ApiError> {
    let id = take_id(&mut body)?;
    let password = take_password(&mut body)?;
    let role_names = match body.remove("roles") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<String>>(v)
                .map_err(|_| ApiError::malformed("roles", "must be a list of role names"))?,
        ),
    };
    // Hashed before the transaction: no connection waits on argon2.
    let password_hash = hash_of(password).await?;
    let a = Acting::begin(state, tenant, user).await?;
    let (tx, actor) = (&a.tx, a.actor());
    let (created, _) = service::create(tx.conn(), &USERS, &actor, id, &body).await?;
    let id = record_id(&created)?;
    if let Some(names) = role_names {
        users_service::set_roles(tx.conn(), id, &names).await?;
    }
    if let Some(h) = password_hash {
        users_service::set_password_hash(tx.conn(), id, &h).await?;
    }
    let found = service::get(tx.conn(), &USERS, Naming::Path, &actor, id).await?;
    a.commit().await?;
    Ok(found)
}

fn record_id(json: &str) -> Result<Uuid, ApiError> {
    #[derive(Deserialize)]
    struct Id {
        id: Uuid,
    }
    serde_json::from_str::<Id>(json)
        .map(|r| r.id)
        .map_err(|e| ApiError::Internal(format!("record without an id: {e}")))
}

/// PATCH /api/v1/users/{id} (Administrators)
#[utoipa::path(tag = "users", request_body = UserPatch,
    responses((status = 200, body = User), (status = 409), (status = 412), (status = 422)),
    security(("bearer" = [])))]
#[patch("/users/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let mut body = body.into_inner();
    let version = records::expected_version(&req, &mut body)?;
    let (updated, version) = update_user(&state, &tenant, &user, *id, version, body).await?;
    Ok(with_etag(HttpResponse::Ok(), updated, version))
}

/// Applies a PATCH body (its fields and `password`) to user `id` if it is
/// still at `version`, for `user`: the user as JSON and its version. REST
/// and the console (disable, reset a password) change users here.
pub async fn update_user(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    id: Uuid,
    version: i64,
    mut body: Map<String, Value>,
) -> Result<(String, i64), ApiError> {
    let password_hash = hash_of(take_password(&mut body)?).await?;
    let a = Acting::begin(state, tenant, user).await?;
    let (tx, actor) = (&a.tx, a.actor());
    let (mut updated, mut version) =
        service::update(tx.conn(), &USERS, &actor, id, version, &body).await?;
    if let Some(h) = password_hash {
        users_service::set_password_hash(tx.conn(), id, &h).await?;
        (updated, version) = service::get(tx.conn(), &USERS, Naming::Path, &actor, id).await?;
    }
    a.commit().await?;
    Ok((updated, version))
}

/// DELETE /api/v1/users/{id} (Administrators)
#[utoipa::path(tag = "users",
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
#[delete("/users/{id}")]
pub async fn remove(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    records::remove(&state, &tenant, &user, &USERS, *id).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

/// PUT /api/v1/users/{id}/roles (Administrators): replaces the user's roles.
#[utoipa::path(tag = "users", request_body = RolesBody,
    responses((status = 200, body = User), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[put("/users/{id}/roles")]
pub async fn set_roles(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
    body: web::Json<RolesBody>,
) -> Result<HttpResponse, ApiError> {
    let (updated, version) = replace_roles(&state, &tenant, &user, *id, &body.roles).await?;
    Ok(with_etag(HttpResponse::Ok(), updated, version))
}

/// Makes `roles` user `id`'s roles, for `user` (REST and the console).
pub async fn replace_roles(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    id: Uuid,
    names: &[String],
) -> Result<(String, i64), ApiError> {
    let a = Acting::begin(state, tenant, user).await?;
    a.perms.write(&USERS)?;
    let (tx, actor) = (&a.tx, a.actor());
    service::get(tx.conn(), &USERS, Naming::Path, &actor, id).await?;
    users_service::set_roles(tx.conn(), id, names).await?;
    let found = service::get(tx.conn(), &USERS, Naming::Path, &actor, id).await?;
    a.commit().await?;
    Ok(found)
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct RoleOut {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub is_system: bool,
}

/// GET /api/v1/roles
#[utoipa::path(tag = "users",
    responses((status = 200, body = Vec<RoleOut>)), security(("bearer" = [])))]
#[get("/roles")]
pub async fn roles(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    permissions(&state, &tx, &user).await?.read(&USERS)?;
    let roles = RoleOut::find_by_statement(tenancy::stmt(
        "SELECT id, name, description, is_system FROM roles ORDER BY name",
        [],
    ))
    .all(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(roles))
}
