//! The OpenAPI 3 description of every route, served at
//! `/api/v1/openapi.json` with Swagger UI at `/docs/` (assets vendored:
//! works offline). Each route's entry is registered with the route itself
//! (`utoipa-actix-web`), so a served route cannot be missing from it; this
//! module holds what the document says besides the routes.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Strata API",
        description = "Multi-tenant CRM API. Tenant routes are served on the tenant's host \
                       (`<slug>.<base domain>` or a custom domain); errors are \
                       application/problem+json."
    ),
    paths(document_path),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200)))]
#[allow(dead_code)]
fn document_path() {}

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

/// The whole document: what [`ApiDoc`] says, and the entry every route
/// registers with itself.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::config)
        .split_for_parts();
    doc
}

/// Swagger UI at `/docs/` and `document` at [`DOCUMENT_PATH`].
pub fn swagger_ui(document: utoipa::openapi::OpenApi) -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url(DOCUMENT_PATH, document)
}
