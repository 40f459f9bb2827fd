//! Platform routes, served on the bare base domain only.

use actix_web::{HttpResponse, web};
use domain::FieldErrors;
use domain::password::Password;
use domain::validation::{email, text};
use serde::{Deserialize, Serialize};
use tenancy::{FirstAdmin, NewTenant, Slug};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::middleware::tenant::PlatformHost;
use crate::startup::AppState;

crate::routes::routes! {
    post "/platform/signup" => signup;
}

/// A new tenant and its first administrator.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The subdomain: 3 to 40 lower-case letters, digits and hyphens.
    pub slug: String,
    pub display_name: String,
    pub admin_email: String,
    pub admin_password: String,
    pub admin_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub tenant_id: Uuid,
    pub slug: String,
    pub display_name: String,
    pub admin_email: String,
}

/// Creates a tenant and its first administrator in one transaction (on the
/// platform domain).
#[utoipa::path(post, path = "/api/v1/platform/signup", tag = "platform",
    request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 404), (status = 409), (status = 422)))]
pub async fn signup(
    state: web::Data<AppState>,
    _platform: PlatformHost,
    body: web::Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut errors = FieldErrors::new();
    let slug = errors.check("slug", Slug::parse(&b.slug));
    let display_name = errors.check("display_name", text(&b.display_name, 1, 200));
    let admin_email = errors.check("admin_email", email(&b.admin_email));
    let password = errors.check("admin_password", Password::parse(&b.admin_password));
    let admin_name = errors.check(
        "admin_name",
        text(b.admin_name.as_deref().unwrap_or("Administrator"), 1, 200),
    );
    let (Some(slug), Some(display_name), Some(admin_email), Some(password), Some(admin_name)) =
        (slug, display_name, admin_email, password, admin_name)
    else {
        return Err(errors.into());
    };
    let slug_text = slug.to_string();
    let new = NewTenant::new(slug, &display_name, &[], &state.base_domain).map_err(|e| {
        let mut errs = FieldErrors::new();
        errs.add("display_name", e.to_string());
        ApiError::Validation(errs)
    })?;
    let password_hash = web::block(move || password.hash())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let tenant = state
        .resolver
        .registry()
        .create(&new.with_admin(FirstAdmin {
            email: admin_email.clone(),
            full_name: admin_name,
            password_hash,
        }))
        .await
        .map_err(|e| match e {
            tenancy::Error::TenantExists(_) | tenancy::Error::OrphanSchema(_) => {
                ApiError::Conflict(format!("the slug `{slug_text}` is taken"))
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(SignupResponse {
        tenant_id: tenant.id(),
        slug: tenant.slug().to_string(),
        display_name: tenant.display_name().to_owned(),
        admin_email,
    }))
}
