//! Users of the tenant and their roles. Everyone signed in may read them;
//! only Administrators change them, and the last administrator stays.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::FieldErrors;
use domain::password::Password;
use domain::roles::{ADMINISTRATORS, Action, Area, USERS};
use domain::validation::{email, opt_text, text};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};
use tenancy::{TenantTx, stmt};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::crud::{self, Changes, Filter, HasKey, Page, PageParams, Table};
use crate::startup::AppState;

crate::routes::routes! {
    get "/users" => list;
    post "/users" => create;
    get "/users/{id}" => show;
    patch "/users/{id}" => update;
    delete "/users/{id}" => remove;
    put "/users/{id}/roles" => set_roles;
    get "/roles" => roles;
}

pub const TABLE: Table = Table {
    name: "users",
    noun: "user",
    columns: "id, email, full_name, phone, branch_id, is_active, last_login_at, version, \
              created_at, updated_at, ARRAY(SELECT r.name FROM user_roles ur \
              JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = users.id ORDER BY r.name) AS roles",
    sorts: &[
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("email", "text"),
        ("full_name", "text"),
    ],
};

/// A user as the API shows it (never the password hash).
#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub phone: Option<String>,
    pub branch_id: Option<Uuid>,
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub roles: Vec<String>,
}

impl HasKey for UserOut {
    fn key(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
}

/// The names of `user`'s roles.
pub async fn user_roles(tx: &TenantTx, user: Uuid) -> Result<Vec<String>, ApiError> {
    let rows = tx
        .conn()
        .query_all_raw(stmt(
            "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             WHERE ur.user_id = $1 ORDER BY r.name",
            [user.into()],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

pub async fn load_user(tx: &TenantTx, id: Uuid) -> Result<Option<UserOut>, ApiError> {
    match crud::get::<UserOut>(tx, &TABLE, id).await {
        Ok(u) => Ok(Some(u)),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// created_at, updated_at, email or full_name; prefix - for descending.
    pub order: Option<String>,
    pub is_active: Option<bool>,
    pub branch_id: Option<Uuid>,
    /// Users holding this role.
    pub role: Option<String>,
    /// Case-insensitive substring of e-mail or name.
    pub q: Option<String>,
}

/// GET /api/v1/users
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery),
    responses((status = 200, body = Page<UserOut>)), security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Read)?;
    let q = query.into_inner();
    let mut filters = Vec::new();
    if let Some(v) = q.is_active {
        filters.push(Filter::eq("is_active", v));
    }
    if let Some(v) = q.branch_id {
        filters.push(Filter::eq("branch_id", v));
    }
    if let Some(role) = q.role {
        filters.push(Filter {
            sql: "EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                  WHERE ur.user_id = users.id AND r.name = $?)"
                .into(),
            values: vec![role.into()],
        });
    }
    if let Some(s) = q.q {
        filters.push(Filter {
            sql: "(email ILIKE $? OR full_name ILIKE $?)".into(),
            values: vec![format!("%{s}%").into(), format!("%{s}%").into()],
        });
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let page: Page<UserOut> = crud::list(
        &tx,
        &TABLE,
        filters,
        PageParams {
            limit: q.limit,
            cursor: q.cursor.as_deref(),
            order: q.order.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page))
}

/// GET /api/v1/users/{id}
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 200, body = UserOut), (status = 404)), security(("bearer" = [])))]
pub async fn show(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Read)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let found: UserOut = crud::get(&tx, &TABLE, *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(found))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub email: String,
    pub full_name: String,
    /// Absent: the user cannot sign in until one is set.
    pub password: Option<String>,
    pub phone: Option<String>,
    pub branch_id: Option<Uuid>,
    /// Role names; default `["Users"]`.
    pub roles: Option<Vec<String>>,
}

/// Role ids for `names`; unknown names are field errors.
async fn role_ids(
    tx: &TenantTx,
    names: &[String],
    errors: &mut FieldErrors,
) -> Result<Vec<Uuid>, ApiError> {
    let rows = tx
        .conn()
        .query_all_raw(stmt(
            "SELECT id, name FROM roles WHERE name = ANY($1::text[])",
            [names.to_vec().into()],
        ))
        .await?;
    let mut ids = Vec::new();
    for name in names {
        match rows
            .iter()
            .find(|r| r.try_get::<String>("", "name").is_ok_and(|n| &n == name))
        {
            Some(r) => ids.push(r.try_get::<Uuid>("", "id")?),
            None => errors.add("roles", format!("`{name}` is not a role of this tenant")),
        }
    }
    Ok(ids)
}

async fn replace_roles(tx: &TenantTx, user: Uuid, ids: &[Uuid]) -> Result<(), ApiError> {
    tx.conn()
        .execute_raw(stmt(
            "DELETE FROM user_roles WHERE user_id = $1",
            [user.into()],
        ))
        .await?;
    tx.conn()
        .execute_raw(stmt(
            "INSERT INTO user_roles (user_id, role_id) SELECT $1, unnest($2::uuid[])",
            [user.into(), ids.to_vec().into()],
        ))
        .await?;
    Ok(())
}

/// Fails with 409 if, after the change, no active user would hold
/// Administrators. Locks the role row so concurrent changes queue.
async fn keep_an_administrator(tx: &TenantTx) -> Result<(), ApiError> {
    tx.conn()
        .execute_raw(stmt(
            "SELECT 1 FROM roles WHERE name = $1 FOR UPDATE",
            [ADMINISTRATORS.into()],
        ))
        .await?;
    let left = tx
        .conn()
        .query_one_raw(stmt(
            "SELECT count(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             JOIN users u ON u.id = ur.user_id WHERE r.name = $1 AND u.is_active",
            [ADMINISTRATORS.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if left == 0 {
        return Err(ApiError::Conflict(
            "the last administrator cannot be removed, disabled or demoted".into(),
        ));
    }
    Ok(())
}

async fn hash(password: Password) -> Result<String, ApiError> {
    web::block(move || password.hash())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// POST /api/v1/users (Administrators)
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserCreate,
    responses((status = 201, body = UserOut), (status = 403), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<UserCreate>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let b = body.into_inner();
    let mut errors = FieldErrors::new();
    let email = errors.check("email", email(&b.email));
    let full_name = errors.check("full_name", text(&b.full_name, 1, 200));
    let phone = errors.check("phone", opt_text(b.phone.as_deref(), 50));
    let password = match &b.password {
        Some(p) => errors.check("password", Password::parse(p)),
        None => None,
    };
    let names = b.roles.unwrap_or_else(|| vec![USERS.to_owned()]);
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let ids = role_ids(&tx, &names, &mut errors).await?;
    let (Some(email), Some(full_name), Some(phone), true) =
        (email, full_name, phone, errors.is_empty())
    else {
        return Err(errors.into());
    };
    let password_hash = match password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let created: UserOut = crud::insert(
        &tx,
        &TABLE,
        vec![
            ("email", email.into()),
            ("full_name", full_name.into()),
            ("phone", phone.into()),
            ("branch_id", b.branch_id.into()),
            ("password_hash", password_hash.into()),
        ],
    )
    .await?;
    replace_roles(&tx, created.id, &ids).await?;
    let created: UserOut = crud::get(&tx, &TABLE, created.id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub full_name: Option<String>,
    pub password: Option<String>,
    #[serde(default, deserialize_with = "crud::double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crud::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub branch_id: Option<Option<Uuid>>,
    pub is_active: Option<bool>,
    /// The version the change was made against (or send If-Match).
    pub version: Option<i64>,
}

/// PATCH /api/v1/users/{id} (Administrators)
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UserPatch,
    responses((status = 200, body = UserOut), (status = 409), (status = 412), (status = 422)),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let b = body.into_inner();
    let version = crud::expected_version(&req, b.version)?;
    let mut changes = Changes::new();
    changes.set("full_name", b.full_name.as_deref().map(|v| text(v, 1, 200)));
    changes.set(
        "phone",
        b.phone.as_ref().map(|v| opt_text(v.as_deref(), 50)),
    );
    changes.set("branch_id", b.branch_id.map(Ok::<_, String>));
    changes.set("is_active", b.is_active.map(Ok::<_, String>));
    let password = b.password.as_deref().map(Password::parse);
    let password = match password {
        Some(Err(e)) => {
            changes.error("password", e);
            None
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let mut fields = changes.finish()?;
    if let Some(p) = password {
        fields.push(("password_hash", Some(hash(p).await?).into()));
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let updated: UserOut = crud::update(&tx, &TABLE, *id, version, fields).await?;
    if b.is_active == Some(false) {
        keep_an_administrator(&tx).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(updated))
}

/// DELETE /api/v1/users/{id} (Administrators)
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 204), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn remove(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    crud::delete(&tx, &TABLE, *id).await?;
    keep_an_administrator(&tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

/// PUT /api/v1/users/{id}/roles (Administrators): replaces the user's roles.
#[utoipa::path(put, path = "/api/v1/users/{id}/roles", tag = "users", request_body = RolesBody,
    responses((status = 200, body = UserOut), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn set_roles(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
    body: web::Json<RolesBody>,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let _: UserOut = crud::get(&tx, &TABLE, *id).await?;
    let mut errors = FieldErrors::new();
    let ids = role_ids(&tx, &body.roles, &mut errors).await?;
    if !errors.is_empty() {
        return Err(errors.into());
    }
    replace_roles(&tx, *id, &ids).await?;
    keep_an_administrator(&tx).await?;
    let updated: UserOut = crud::get(&tx, &TABLE, *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(updated))
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct RoleOut {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub is_system: bool,
}

/// GET /api/v1/roles
#[utoipa::path(get, path = "/api/v1/roles", tag = "users",
    responses((status = 200, body = Vec<RoleOut>)), security(("bearer" = [])))]
pub async fn roles(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Read)?;
    let roles: Vec<RoleOut> = crud::read_all(
        &state,
        &tenant.0,
        "SELECT id, name, description, is_system FROM roles ORDER BY name",
        vec![],
    )
    .await?;
    Ok(HttpResponse::Ok().json(roles))
}
