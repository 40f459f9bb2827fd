//! Generic handlers of a CRM resource (list, get, create, update, delete),
//! and the macro that gives each resource its concrete, documented routes.

use actix_web::{HttpRequest, HttpResponse, web};
use domain::roles::{Action, Area};
use sea_orm::FromQueryResult;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tenancy::TenantTx;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::crud::{self, Changes, Filter, HasKey, Page, PageParams, Table};
use crate::startup::AppState;

/// A tenant table served as a REST resource.
pub trait Resource: 'static {
    const TABLE: Table;
    /// Which row of the role matrix governs it.
    const AREA: Area;
    type Out: FromQueryResult + Serialize + HasKey;
    type Create: DeserializeOwned;
    type Patch: DeserializeOwned + Versioned;
    type Query: DeserializeOwned + Paged;

    /// The filters of a list query, checked.
    fn filters(query: &Self::Query) -> Result<Vec<Filter>, ApiError>;
    /// The columns of a new record made by `caller`, checked field by field.
    fn create(input: Self::Create, caller: &AuthUser) -> Changes;
    /// The columns a PATCH changes, checked field by field.
    fn patch(input: Self::Patch) -> Changes;
}

/// A PATCH body that may carry the version it was made against.
pub trait Versioned {
    fn version(&self) -> Option<i64>;
}

/// A list query's paging parameters.
pub trait Paged {
    fn page(&self) -> PageParams<'_>;
}

pub async fn list<R: Resource>(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    query: web::Query<R::Query>,
) -> Result<HttpResponse, ApiError> {
    user.require(R::AREA, Action::Read)?;
    let filters = R::filters(&query)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let page: Page<R::Out> = crud::list(&tx, &R::TABLE, filters, query.page()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn show<R: Resource>(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(R::AREA, Action::Read)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let found: R::Out = crud::get(&tx, &R::TABLE, *id).await?;
    tx.commit().await?;
    Ok(with_etag(HttpResponse::Ok(), &found))
}

pub async fn create<R: Resource>(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    body: web::Json<R::Create>,
) -> Result<HttpResponse, ApiError> {
    user.require(R::AREA, Action::Write)?;
    let fields = R::create(body.into_inner(), &user).finish()?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let created: R::Out = crud::insert(&tx, &R::TABLE, fields).await?;
    tx.commit().await?;
    Ok(with_etag(HttpResponse::Created(), &created))
}

pub async fn update<R: Resource>(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<R::Patch>,
) -> Result<HttpResponse, ApiError> {
    user.require(R::AREA, Action::Write)?;
    let body = body.into_inner();
    let version = crud::expected_version(&req, body.version())?;
    let fields = R::patch(body).finish()?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let updated: R::Out = crud::update(&tx, &R::TABLE, *id, version, fields).await?;
    tx.commit().await?;
    Ok(with_etag(HttpResponse::Ok(), &updated))
}

pub async fn remove<R: Resource>(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(R::AREA, Action::Write)?;
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    crud::delete(&tx, &R::TABLE, *id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The record with its version as `ETag`, for a later `If-Match`.
fn with_etag<T: Serialize + HasKey>(
    mut res: actix_web::HttpResponseBuilder,
    body: &T,
) -> HttpResponse {
    res.insert_header((
        actix_web::http::header::ETAG,
        format!("\"{}\"", body.version()),
    ));
    res.json(body)
}

/// Concrete, OpenAPI-documented routes for resource `$res`:
/// `GET/POST $coll` and `GET/PATCH/DELETE $item`; and the record, patch and
/// query traits of its types, which have `id`/`version`, `version`, and
/// `limit`/`cursor`/`order` fields.
macro_rules! resource_routes {
    ($res:ident, $out:ident, $create:ident, $patch:ident, $query:ident,
     $tag:tt, $coll:tt, $item:tt, $rel_coll:tt, $rel_item:tt) => {
      impl crate::routes::crud::HasKey for $out {
          fn key(&self) -> uuid::Uuid {
              self.id
          }
          fn version(&self) -> i64 {
              self.version
          }
      }

      impl crate::routes::resource::Versioned for $patch {
          fn version(&self) -> Option<i64> {
              self.version
          }
      }

      impl crate::routes::resource::Paged for $query {
          fn page(&self) -> crate::routes::crud::PageParams<'_> {
              crate::routes::crud::PageParams {
                  limit: self.limit,
                  cursor: self.cursor.as_deref(),
                  order: self.order.as_deref(),
              }
          }
      }

      /// The resource's HTTP handlers and routes.
      pub mod http {
        #[allow(unused_imports)]
        use super::*;
        use actix_web::{HttpRequest, HttpResponse, web};
        use uuid::Uuid;

        use crate::auth::AuthUser;
        use crate::error::ApiError;
        use crate::middleware::tenant::CurrentTenant;
        use crate::routes::crud::Page;
        use crate::routes::resource as generic;
        use crate::startup::AppState;

        /// List, filtered, ordered and paged by cursor.
        #[utoipa::path(get, path = $coll, tag = $tag, params($query),
            responses((status = 200, body = Page<$out>), (status = 401), (status = 422)),
            security(("bearer" = [])))]
        pub async fn list(
            state: web::Data<AppState>,
            tenant: CurrentTenant,
            user: AuthUser,
            query: web::Query<$query>,
        ) -> Result<HttpResponse, ApiError> {
            generic::list::<$res>(state, tenant, user, query).await
        }

        /// One record.
        #[utoipa::path(get, path = $item, tag = $tag,
            params(("id" = Uuid, Path)),
            responses((status = 200, body = $out), (status = 404)),
            security(("bearer" = [])))]
        pub async fn show(
            state: web::Data<AppState>,
            tenant: CurrentTenant,
            user: AuthUser,
            id: web::Path<Uuid>,
        ) -> Result<HttpResponse, ApiError> {
            generic::show::<$res>(state, tenant, user, id).await
        }

        /// Create a record.
        #[utoipa::path(post, path = $coll, tag = $tag, request_body = $create,
            responses((status = 201, body = $out), (status = 400), (status = 403), (status = 422)),
            security(("bearer" = [])))]
        pub async fn create(
            state: web::Data<AppState>,
            tenant: CurrentTenant,
            user: AuthUser,
            body: web::Json<$create>,
        ) -> Result<HttpResponse, ApiError> {
            generic::create::<$res>(state, tenant, user, body).await
        }

        /// Change a record made at a known version (If-Match or `version`).
        #[utoipa::path(patch, path = $item, tag = $tag, request_body = $patch,
            params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
            responses((status = 200, body = $out), (status = 404), (status = 412), (status = 422)),
            security(("bearer" = [])))]
        pub async fn update(
            state: web::Data<AppState>,
            tenant: CurrentTenant,
            user: AuthUser,
            req: HttpRequest,
            id: web::Path<Uuid>,
            body: web::Json<$patch>,
        ) -> Result<HttpResponse, ApiError> {
            generic::update::<$res>(state, tenant, user, req, id, body).await
        }

        /// Delete a record.
        #[utoipa::path(delete, path = $item, tag = $tag,
            params(("id" = Uuid, Path)),
            responses((status = 204), (status = 404), (status = 409)),
            security(("bearer" = [])))]
        pub async fn remove(
            state: web::Data<AppState>,
            tenant: CurrentTenant,
            user: AuthUser,
            id: web::Path<Uuid>,
        ) -> Result<HttpResponse, ApiError> {
            generic::remove::<$res>(state, tenant, user, id).await
        }

        crate::routes::routes! {
            get $rel_coll => list;
            post $rel_coll => create;
            get $rel_item => show;
            patch $rel_item => update;
            delete $rel_item => remove;
        }
      }
    };
}
pub(crate) use resource_routes;
