//! The OpenAPI 3 description of every route, generated from the handlers,
//! served at `/api/v1/openapi.json` with Swagger UI at `/docs/` (assets
//! vendored: works offline).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::records::{branches, clients, contacts, notes, tasks};
use crate::routes::{auth, compat, health, offline, platform, sync, tenant, users};

pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Strata API",
        description = "Multi-tenant CRM API. Tenant routes are served on the tenant's host \
                       (`<slug>.<base domain>` or a custom domain); errors are \
                       application/problem+json."
    ),
    paths(
        health::health, health::ready,
        tenant::show, tenant::stats,
        auth::token, auth::refresh, auth::logout, auth::me,
        users::list, users::create, users::show, users::update, users::remove,
        users::set_roles, users::roles,
        branches::list, branches::create, branches::show,
        branches::update, branches::remove,
        clients::list, clients::create, clients::show,
        clients::update, clients::remove,
        contacts::list, contacts::create, contacts::show,
        contacts::update, contacts::remove,
        tasks::list, tasks::create, tasks::show,
        tasks::update, tasks::remove,
        notes::list, notes::create, notes::show,
        notes::update, notes::remove,
        platform::signup, platform::operator_token, platform::tenants,
        sync::pull, sync::push, sync::permissions, sync::set_permissions,
        sync::filters, sync::add_filter, sync::remove_filter, sync::log, sync::state_of_caller,
        compat::token, compat::push, compat::pull,
        offline::watermelon_pull, offline::watermelon_push, offline::rxdb_pull, offline::rxdb_push,
        document,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200)))]
#[allow(dead_code)]
fn document() {}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// Swagger UI at `/docs/` and the document at [`DOCUMENT_PATH`].
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url(DOCUMENT_PATH, ApiDoc::openapi())
}
