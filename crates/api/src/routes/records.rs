//! The CRM records over REST: thin handlers that turn HTTP into calls of
//! `domain::service` (access policy, checks, rules, the one write path) and
//! the answers back into HTTP. One macro line per model gives its
//! documented routes; its schemas come from the model's description.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use domain::Spec;
use domain::record::Naming;
use std::sync::Arc;

use domain::access::Permissions;
use domain::custom::Definitions;
use domain::service::{self, Actor};
use serde::Serialize;
use serde_json::{Map, Value};
use tenancy::TenantTx;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// A page of records and the cursor of the next page, if any.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A JSON object body.
pub type Body = web::Json<Map<String, Value>>;

/// A JSON text as the response body.
pub fn json(mut res: HttpResponseBuilder, body: String) -> HttpResponse {
    res.content_type("application/json").body(body)
}

/// The record with its version as `ETag`, for a later `If-Match`.
pub fn with_etag(mut res: HttpResponseBuilder, body: String, version: i64) -> HttpResponse {
    res.insert_header((header::ETAG, format!("\"{version}\"")));
    json(res, body)
}

/// What the caller's roles allow in the request's tenant.
pub async fn permissions(
    state: &AppState,
    tx: &TenantTx,
    user: &AuthUser,
) -> Result<Arc<Permissions>, ApiError> {
    Ok(state.rules.permissions(tx, &user.roles).await?)
}

/// A request's tenant transaction, what its caller may do in it and the
/// tenant's custom fields.
pub struct Acting {
    pub tx: TenantTx,
    pub perms: Arc<Permissions>,
    pub custom: Arc<Definitions>,
    user: Uuid,
}

impl Acting {
    pub async fn begin(
        state: &AppState,
        tenant: &CurrentTenant,
        user: &AuthUser,
    ) -> Result<Self, ApiError> {
        let tx = TenantTx::begin(&state.db, &tenant.0).await?;
        let perms = permissions(state, &tx, user).await?;
        let custom = state.rules.custom(&tx).await?;
        Ok(Self {
            tx,
            perms,
            custom,
            user: user.id,
        })
    }

    pub fn actor(&self) -> Actor<'_> {
        Actor {
            user: self.user,
            permissions: &self.perms,
            custom: &self.custom,
        }
    }

    pub async fn commit(self) -> Result<(), ApiError> {
        Ok(self.tx.commit().await?)
    }
}

/// Whether a read of `spec` runs as one statement naming the tenant's
/// schema, outside a transaction: its plan then survives from one tenant
/// to the next on a pooled connection (see docs/architecture.md, "Many
/// tenants"). Not behind a PgBouncer without prepared statements, where a
/// statement's parts could reach different server connections.
pub fn by_schema(state: &AppState, spec: &Spec) -> bool {
    state.prepared_statements && spec.reads_by_schema()
}

/// A read outside a transaction: what its caller may do.
struct Reading {
    perms: Arc<Permissions>,
    custom: Arc<Definitions>,
    user: Uuid,
}

impl Reading {
    async fn of(
        state: &AppState,
        tenant: &CurrentTenant,
        user: &AuthUser,
    ) -> Result<Self, ApiError> {
        let (perms, custom) = state.rules.of(&state.db, &tenant.0, &user.roles).await?;
        Ok(Self {
            perms,
            custom,
            user: user.id,
        })
    }

    fn actor(&self) -> Actor<'_> {
        Actor {
            user: self.user,
            permissions: &self.perms,
            custom: &self.custom,
        }
    }
}

/// The error of a statement naming `tenant`'s schema. A schema missing
/// behind the registry's back shows as "relation does not exist" (42P01),
/// like a missing table; it is said as a missing schema when it is one.
pub async fn by_schema_error(
    state: &AppState,
    tenant: &CurrentTenant,
    err: sea_orm::DbErr,
) -> ApiError {
    if domain::store::sqlstate(&err).as_deref() == Some("42P01") {
        let schema = tenant.0.schema();
        let found = tenancy::sql::rows(
            &state.db,
            tenancy::stmt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                [schema.as_str().into()],
            ),
        )
        .await;
        if found.is_ok_and(|rows| rows.is_empty()) {
            return tenancy::Error::SchemaMissing(schema.clone()).into();
        }
    }
    err.into()
}

async fn schema_gone(
    state: &AppState,
    tenant: &CurrentTenant,
    err: service::ServiceError,
) -> ApiError {
    match err {
        service::ServiceError::Store(domain::store::StoreError::Database(e)) => {
            by_schema_error(state, tenant, e).await
        }
        other => other.into(),
    }
}

pub async fn list(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    spec: &Spec,
    params: &[(String, String)],
) -> Result<HttpResponse, ApiError> {
    let page = if by_schema(state, spec) {
        let r = Reading::of(state, tenant, user).await?;
        let naming = Naming::Schema(tenant.0.schema().as_str());
        let read = service::list(
            state.reads.for_tenant(&tenant.0),
            spec,
            naming,
            &r.actor(),
            params,
        )
        .await;
        match read {
            Ok(read) => read,
            Err(e) => return Err(schema_gone(state, tenant, e).await),
        }
    } else {
        let a = Acting::begin(state, tenant, user).await?;
        let page = service::list(a.tx.conn(), spec, Naming::Path, &a.actor(), params).await?;
        a.commit().await?;
        page
    };
    Ok(json(HttpResponse::Ok(), page.to_json()))
}

pub async fn show(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    spec: &Spec,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let (found, version) = if by_schema(state, spec) {
        let r = Reading::of(state, tenant, user).await?;
        let naming = Naming::Schema(tenant.0.schema().as_str());
        let read = service::get(
            state.reads.for_tenant(&tenant.0),
            spec,
            naming,
            &r.actor(),
            id,
        )
        .await;
        match read {
            Ok(read) => read,
            Err(e) => return Err(schema_gone(state, tenant, e).await),
        }
    } else {
        let a = Acting::begin(state, tenant, user).await?;
        let found = service::get(a.tx.conn(), spec, Naming::Path, &a.actor(), id).await?;
        a.commit().await?;
        found
    };
    Ok(with_etag(HttpResponse::Ok(), found, version))
}

/// The client-minted id of a create body, taken out of it.
pub fn take_id(body: &mut Map<String, Value>) -> Result<Option<Uuid>, ApiError> {
    match body.remove("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Uuid::parse_str(&s)
            .map(Some)
            .map_err(|_| ApiError::field("id", "must be a UUID")),
        Some(_) => Err(ApiError::malformed("id", "must be a UUID string")),
    }
}

pub async fn create(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    spec: &Spec,
    mut body: Map<String, Value>,
) -> Result<HttpResponse, ApiError> {
    let id = take_id(&mut body)?;
    let a = Acting::begin(state, tenant, user).await?;
    let (created, version) = service::create(a.tx.conn(), spec, &a.actor(), id, &body).await?;
    a.commit().await?;
    Ok(with_etag(HttpResponse::Created(), created, version))
}

/// The version a PATCH is made against: `If-Match` (`"3"` or `W/"3"`) or
/// the body's `version`, taken out of the body.
pub fn expected_version(req: &HttpRequest, body: &mut Map<String, Value>) -> Result<i64, ApiError> {
    let given = body.remove("version");
    let header = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok());
    match (header, given) {
        (Some(h), _) => h
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .map_err(|_| ApiError::field("If-Match", "must be a record version such as \"3\"")),
        (None, Some(Value::Number(n))) => n
            .as_i64()
            .ok_or_else(|| ApiError::field("version", "must be an integer")),
        (None, Some(Value::Null) | None) => Err(ApiError::field(
            "version",
            "is required (or send If-Match) so concurrent edits are not lost",
        )),
        (None, Some(_)) => Err(ApiError::malformed("version", "must be an integer")),
    }
}

pub async fn update(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    req: &HttpRequest,
    spec: &Spec,
    id: Uuid,
    mut body: Map<String, Value>,
) -> Result<HttpResponse, ApiError> {
    let version = expected_version(req, &mut body)?;
    let a = Acting::begin(state, tenant, user).await?;
    let (updated, version) =
        service::update(a.tx.conn(), spec, &a.actor(), id, version, &body).await?;
    a.commit().await?;
    Ok(with_etag(HttpResponse::Ok(), updated, version))
}

pub async fn remove(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    spec: &Spec,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let a = Acting::begin(state, tenant, user).await?;
    service::delete(a.tx.conn(), spec, &a.actor(), id).await?;
    a.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The OpenAPI types of model `$spec`: `$record` (as returned), `$create`
/// and `$patch` (bodies) and `$query` (list parameters), all generated from
/// the model's description.
macro_rules! record_schemas {
    ($spec:path, $record:ident, $create:ident, $patch:ident, $query:ident) => {
        /// A record as the API returns it.
        pub struct $record;
        impl utoipa::PartialSchema for $record {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::schema(&$spec, crate::schema::Shape::Record)
            }
        }
        impl utoipa::ToSchema for $record {}

        /// A create body.
        pub struct $create;
        impl utoipa::PartialSchema for $create {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::schema(&$spec, crate::schema::Shape::Create)
            }
        }
        impl utoipa::ToSchema for $create {}

        /// A PATCH body.
        pub struct $patch;
        impl utoipa::PartialSchema for $patch {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::schema::schema(&$spec, crate::schema::Shape::Patch)
            }
        }
        impl utoipa::ToSchema for $patch {}

        /// The list's query parameters.
        pub struct $query;
        impl utoipa::IntoParams for $query {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                crate::schema::list_params(&$spec)
            }
        }
    };
}
pub(crate) use record_schemas;

/// Documented routes of model `$spec`: `GET/POST $coll`,
/// `GET/PATCH/DELETE $item`, in module `$module`.
macro_rules! record_routes {
    ($module:ident, $spec:path, $tag:literal, $coll:literal, $item:literal,
     $record:ident, $create:ident, $patch:ident, $query:ident) => {
        pub mod $module {
            use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
            use uuid::Uuid;

            use crate::auth::AuthUser;
            use crate::error::ApiError;
            use crate::middleware::tenant::CurrentTenant;
            use crate::routes::records::{self as generic, Body, Page};
            use crate::state::AppState;

            generic::record_schemas!($spec, $record, $create, $patch, $query);

            /// List, filtered, ordered and paged by cursor.
            #[utoipa::path(tag = $tag, params($query),
                responses((status = 200, body = Page<$record>), (status = 400), (status = 401),
                          (status = 403), (status = 422)),
                security(("bearer" = [])))]
            #[get($coll)]
            pub async fn list(
                state: web::Data<AppState>,
                tenant: CurrentTenant,
                user: AuthUser,
                query: web::Query<Vec<(String, String)>>,
            ) -> Result<HttpResponse, ApiError> {
                generic::list(&state, &tenant, &user, &$spec, &query).await
            }

            /// One record.
            #[utoipa::path(tag = $tag,
                params(("id" = Uuid, Path)),
                responses((status = 200, body = $record), (status = 403), (status = 404)),
                security(("bearer" = [])))]
            #[get($item)]
            pub async fn show(
                state: web::Data<AppState>,
                tenant: CurrentTenant,
                user: AuthUser,
                id: web::Path<Uuid>,
            ) -> Result<HttpResponse, ApiError> {
                generic::show(&state, &tenant, &user, &$spec, *id).await
            }

            /// Create a record.
            #[utoipa::path(tag = $tag, request_body = $create,
                responses((status = 201, body = $record), (status = 400), (status = 403),
                          (status = 409), (status = 422)),
                security(("bearer" = [])))]
            #[post($coll)]
            pub async fn create(
                state: web::Data<AppState>,
                tenant: CurrentTenant,
                user: AuthUser,
                body: Body,
            ) -> Result<HttpResponse, ApiError> {
                generic::create(&state, &tenant, &user, &$spec, body.into_inner()).await
            }

            /// Change a record made at a known version (If-Match or `version`).
            #[utoipa::path(tag = $tag, request_body = $patch,
                params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
                responses((status = 200, body = $record), (status = 400), (status = 403),
                          (status = 404), (status = 412), (status = 422)),
                security(("bearer" = [])))]
            #[patch($item)]
            pub async fn update(
                state: web::Data<AppState>,
                tenant: CurrentTenant,
                user: AuthUser,
                req: HttpRequest,
                id: web::Path<Uuid>,
                body: Body,
            ) -> Result<HttpResponse, ApiError> {
                generic::update(&state, &tenant, &user, &req, &$spec, *id, body.into_inner())
                    .await
            }

            /// Delete a record.
            #[utoipa::path(tag = $tag,
                params(("id" = Uuid, Path)),
                responses((status = 204), (status = 403), (status = 404), (status = 409)),
                security(("bearer" = [])))]
            #[delete($item)]
            pub async fn remove(
                state: web::Data<AppState>,
                tenant: CurrentTenant,
                user: AuthUser,
                id: web::Path<Uuid>,
            ) -> Result<HttpResponse, ApiError> {
                generic::remove(&state, &tenant, &user, &$spec, *id).await
            }

            /// Registers the model's routes, each with its OpenAPI entry.
            pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
                cfg.service(list)
                    .service(create)
                    .service(show)
                    .service(update)
                    .service(remove);
            }
        }
    };
}

record_routes!(
    branches,
    domain::record::BRANCHES,
    "branches",
    "/branches",
    "/branches/{id}",
    Branch,
    BranchCreate,
    BranchPatch,
    BranchQuery
);
record_routes!(
    clients,
    domain::record::CLIENTS,
    "clients",
    "/clients",
    "/clients/{id}",
    Client,
    ClientCreate,
    ClientPatch,
    ClientQuery
);
record_routes!(
    contacts,
    domain::record::CONTACTS,
    "contacts",
    "/contacts",
    "/contacts/{id}",
    Contact,
    ContactCreate,
    ContactPatch,
    ContactQuery
);
record_routes!(
    tasks,
    domain::record::TASKS,
    "tasks",
    "/tasks",
    "/tasks/{id}",
    Task,
    TaskCreate,
    TaskPatch,
    TaskQuery
);
record_routes!(
    notes,
    domain::record::NOTES,
    "notes",
    "/notes",
    "/notes/{id}",
    Note,
    NoteCreate,
    NotePatch,
    NoteQuery
);
