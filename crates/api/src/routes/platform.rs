//! Platform routes, served on the bare base domain only.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use domain::FieldErrors;
use domain::password::Password;
use domain::validation::{email, text};
use serde::{Deserialize, Serialize};
use tenancy::{FirstAdmin, NewTenant, Slug, Verification};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::operator::{OPERATOR_ROLE, Operator};
use crate::auth::sign_in;
use crate::error::ApiError;
use crate::middleware::tenant::PlatformHost;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(signup)
        .service(clone_tenant)
        .service(verify_signup)
        .service(operator_token)
        .service(operator_logout)
        .service(tenants);
}

#[derive(Serialize, ToSchema)]
pub struct OperatorTokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Signs a platform operator in (on the platform domain). Operator tokens
/// are short-lived, have no refresh token, and each is a session that
/// `POST /platform/auth/logout` or `migrator operator revoke` ends.
#[utoipa::path(tag = "platform",
    request_body = crate::routes::auth::TokenRequest,
    responses((status = 200, body = OperatorTokenResponse), (status = 401), (status = 429)))]
#[post("/platform/auth/token")]
pub async fn operator_token(
    state: web::Data<AppState>,
    _platform: PlatformHost,
    req: HttpRequest,
    body: web::Json<crate::routes::auth::TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let crate::routes::auth::TokenRequest { email, password } = body.into_inner();
    let access_token = operator_sign_in(&state, &req, &email, password).await?;
    Ok(HttpResponse::Ok().json(OperatorTokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs,
    }))
}

/// Checks an operator's credentials (throttled) and starts a session: its
/// access token. The API's sign-in and the platform console's call it.
pub async fn operator_sign_in(
    state: &AppState,
    req: &HttpRequest,
    email: &str,
    password: String,
) -> Result<String, ApiError> {
    let (email, throttle) = sign_in::attempt(state, req, Uuid::nil(), email).await?;
    let found = tenancy::operators::find(&state.db, &email).await?;
    let matches =
        crate::auth::hashing::verify(password, found.as_ref().map(|o| o.password_hash.clone()))
            .await?;
    let (operator, epoch) = match found {
        Some(o) if matches && o.is_active => (o.id, o.credentials_epoch),
        _ => return Err(sign_in::WRONG_CREDENTIALS),
    };
    let session = Uuid::now_v7();
    tenancy::operators::start_session(&state.db, operator, session, state.tokens.access_ttl_secs)
        .await?;
    throttle.succeeded().await?;
    Ok(state.tokens.issue(
        operator,
        Uuid::nil(),
        session,
        epoch,
        vec![OPERATOR_ROLE.to_owned()],
    )?)
}

/// Ends the calling operator's session: its token is refused from now on,
/// on every server.
#[utoipa::path(tag = "platform",
    responses((status = 204), (status = 401)),
    security(("bearer" = [])))]
#[post("/platform/auth/logout")]
pub async fn operator_logout(
    state: web::Data<AppState>,
    operator: Operator,
) -> Result<HttpResponse, ApiError> {
    tenancy::operators::end_session(&state.db, operator.id, operator.session).await?;
    state.standings.forget_operator(operator.id);
    Ok(HttpResponse::NoContent().finish())
}

fn summary(t: &tenancy::Tenant) -> TenantSummary {
    TenantSummary {
        id: t.id(),
        slug: t.slug().to_string(),
        display_name: t.display_name().to_owned(),
        status: t.status().as_str(),
        created_at: t.created_at(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantSummary {
    pub id: Uuid,
    pub slug: String,
    pub display_name: String,
    /// provisioning, unverified, active, suspended or deleting.
    pub status: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Every tenant (platform operators only).
#[utoipa::path(tag = "platform",
    responses((status = 200, body = Vec<TenantSummary>), (status = 401)),
    security(("bearer" = [])))]
#[get("/platform/tenants")]
pub async fn tenants(
    state: web::Data<AppState>,
    _operator: Operator,
) -> Result<HttpResponse, ApiError> {
    let tenants: Vec<TenantSummary> = state
        .resolver
        .registry()
        .list()
        .await?
        .iter()
        .map(summary)
        .collect();
    Ok(HttpResponse::Ok().json(tenants))
}

/// The copy to make of a tenant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// The new tenant's slug.
    pub slug: String,
    /// Its display name (default: the source's).
    pub display_name: Option<String>,
}

/// Copies a tenant within the database as a new tenant, in one
/// transaction: its users, roles, settings, records and history, not its
/// sessions, with its webhook endpoints inactive (operators). The source
/// must be at the current migration version.
#[utoipa::path(tag = "platform", params(("slug" = String, Path)), request_body = CloneRequest,
    responses((status = 201, body = Object), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
#[post("/platform/tenants/{slug}/clone")]
pub async fn clone_tenant(
    state: web::Data<AppState>,
    _operator: Operator,
    source: web::Path<String>,
    body: web::Json<CloneRequest>,
) -> Result<HttpResponse, ApiError> {
    let registry = state.resolver.registry();
    let source = Slug::parse(&source).map_err(|_| ApiError::NotFound("tenant"))?;
    let from = registry.get(&source).await?;
    let slug = Slug::parse(&body.slug).map_err(|e| ApiError::field("slug", e.to_string()))?;
    let name = body.display_name.as_deref().unwrap_or(from.display_name());
    let new = NewTenant::new(slug, name, &[], &state.base_domain)
        .map_err(|e| ApiError::field("display_name", e.to_string()))?;
    let cloned = registry.clone_tenant(&source, &new).await?;
    Ok(HttpResponse::Created().json(cloned))
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
    /// `active`, or `unverified` until the e-mailed token is presented to
    /// `POST /platform/signup/verify`.
    pub status: &'static str,
}

/// Creates a tenant and its first administrator in one transaction (on the
/// platform domain). With `signup.verify_email` on, the tenant waits
/// (202, `unverified`, not served) until the token e-mailed to the
/// administrator is presented.
#[utoipa::path(tag = "platform",
    request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 202, body = SignupResponse),
              (status = 404), (status = 409), (status = 422), (status = 429)))]
#[post("/platform/signup")]
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
    let password_hash = crate::auth::hashing::hash(password).await?;
    let mut new = new.with_admin(FirstAdmin {
        email: admin_email.clone(),
        full_name: admin_name,
        password_hash,
    });
    if state.signup.verify_email {
        new = new.awaiting(verification(&state.signup, &admin_email, &display_name));
    }
    if !state.signup.template.is_empty() {
        new = new.from_template(state.signup.template.as_str());
    }
    let tenant = state
        .resolver
        .registry()
        .create(&new)
        .await
        .map_err(|e| match e {
            tenancy::Error::TenantExists(_) | tenancy::Error::OrphanSchema(_) => {
                ApiError::Conflict(format!("the slug `{slug_text}` is taken"))
            }
            other => other.into(),
        })?;
    let mut res = if tenant.status() == tenancy::TenantStatus::Active {
        HttpResponse::Created()
    } else {
        HttpResponse::Accepted()
    };
    Ok(res.json(SignupResponse {
        tenant_id: tenant.id(),
        slug: tenant.slug().to_string(),
        display_name: tenant.display_name().to_owned(),
        admin_email,
        status: tenant.status().as_str(),
    }))
}

/// A new verification token and the message that carries it.
fn verification(
    settings: &crate::configuration::SignupSettings,
    email: &str,
    display_name: &str,
) -> Verification {
    let token = crate::auth::sessions::new_token();
    let link = settings.verify_link.replace("{token}", &token);
    Verification {
        token_hash: crate::auth::sessions::digest(&token),
        ttl_secs: settings.verification_ttl_secs,
        recipient: email.to_owned(),
        subject: format!("Confirm your address to start {display_name}"),
        body: format!(
            "Someone, probably you, signed up for {display_name} with this address.\n\n\
             To start it, open {link}\n\
             or send this token to POST /api/v1/platform/signup/verify: {token}\n\n\
             It is valid for {hours} hours. If it was not you, ignore this message; \
             the sign-up is then removed.\n",
            hours = settings.verification_ttl_secs.div_ceil(3600),
        ),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub token: String,
}

/// Verifies a sign-up's e-mail address: the tenant becomes active and is
/// served from now on. A token works once.
#[utoipa::path(tag = "platform",
    request_body = VerifyRequest,
    responses((status = 200, body = TenantSummary), (status = 404)))]
#[post("/platform/signup/verify")]
pub async fn verify_signup(
    state: web::Data<AppState>,
    _platform: PlatformHost,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let digest = crate::auth::sessions::digest(body.token.trim());
    let tenant = state
        .resolver
        .registry()
        .verify(&digest)
        .await?
        .ok_or(ApiError::NotFound(
            "verification token (unknown, used or expired)",
        ))?;
    Ok(HttpResponse::Ok().json(summary(&tenant)))
}
