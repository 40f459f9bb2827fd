//! The web console: HTML pages rendered on the server (maud, checked at
//! compile time), a stylesheet and one small script served from the
//! binary, under a strict Content-Security-Policy. Pages call the same
//! services as the JSON API (the access matrix, the record service, the
//! user and sync settings functions): there is no second copy of a rule.
//! See docs/architecture.md, "The console".

mod field_sets;
mod notifications;
pub mod pages;
pub mod platform;
mod session;
pub mod trails;
pub mod webhooks;

use actix_web::middleware::from_fn;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::middleware::tenant::{CurrentTenant, resolve_tenant};
use crate::state::AppState;

fn tenant_of(req: &HttpRequest) -> Option<CurrentTenant> {
    req.extensions().get::<CurrentTenant>().cloned()
}

/// `/console/`: a tenant's dashboard, or the platform's tenants.
async fn home(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match tenant_of(&req) {
        Some(t) => pages::dashboard(state, t, req).await,
        None => platform::tenants(&state, &req).await,
    }
}

/// `/console/field-sets`: a tenant's custom fields, or the platform's
/// field sets.
async fn field_set_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match tenant_of(&req) {
        Some(t) => field_sets::list(state, t, req).await,
        None => platform::field_set_list(state, req).await,
    }
}

async fn sign_in_form(req: HttpRequest) -> HttpResponse {
    match tenant_of(&req) {
        Some(t) => pages::sign_in_form(t, req).await,
        None => platform::sign_in_page(&req, None),
    }
}

async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    match tenant_of(&req) {
        Some(t) => pages::sign_in(state, t, req, form).await,
        None => platform::sign_in(&state, &req, &form).await,
    }
}

async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    match tenant_of(&req) {
        Some(t) => pages::sign_out(state, t, req, form).await,
        None => platform::sign_out(&state, &req, &form).await,
    }
}

/// The console's Content-Security-Policy: everything from this origin,
/// nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/console` scope: the tenant console on tenant hosts, the platform
/// console on the bare base domain.
pub fn scope() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("/console")
        .wrap(from_fn(resolve_tenant))
        .route("/assets/console.css", web::get().to(pages::stylesheet))
        .route("/assets/console.js", web::get().to(pages::script))
        .route("/sign-in", web::get().to(sign_in_form))
        .route("/sign-in", web::post().to(sign_in))
        .route("/sign-out", web::post().to(sign_out))
        .route(
            "/tenants/{slug}/delete",
            web::get().to(platform::delete_form),
        )
        .route(
            "/tenants/{slug}/delete",
            web::post().to(platform::delete_tenant),
        )
        .route(
            "/tenants/{slug}/{action}",
            web::post().to(platform::tenant_status),
        )
        .route("/tenants", web::post().to(platform::create_tenant))
        .route("/templates", web::get().to(platform::templates))
        .route("/templates", web::post().to(platform::capture_template))
        .route("/metrics", web::get().to(platform::metrics))
        .route("/events", web::get().to(platform::events))
        .route("/events", web::post().to(platform::set_events))
        .route("/field-sets", web::get().to(field_set_page))
        .route("/field-sets", web::post().to(field_sets::create))
        .route(
            "/field-sets/{id}/delete",
            web::post().to(field_sets::delete),
        )
        .route(
            "/distribute/{set}",
            web::get().to(platform::distribute_form),
        )
        .route(
            "/distribute/{set}/preview",
            web::post().to(platform::distribute_preview),
        )
        .route(
            "/distribute/{set}/run",
            web::post().to(platform::distribute_run),
        )
        .route("/jobs", web::get().to(platform::job_list))
        .route("/jobs/{id}", web::get().to(platform::job_page))
        .route("/jobs/{id}/retry", web::post().to(platform::job_retry))
        .route("/users", web::get().to(pages::users))
        .route("/users", web::post().to(pages::create_user))
        .route("/users/{id}", web::get().to(pages::user_page))
        .route("/users/{id}/disable", web::post().to(pages::disable_user))
        .route("/users/{id}/roles", web::post().to(pages::save_roles))
        .route(
            "/users/{id}/password",
            web::post().to(pages::reset_password),
        )
        .route("/webhooks", web::get().to(webhooks::list))
        .route("/webhooks", web::post().to(webhooks::create))
        .route("/webhooks/{id}", web::get().to(webhooks::show))
        .route("/webhooks/{id}/test", web::post().to(webhooks::test_event))
        .route(
            "/webhooks/deliveries/{id}/retry",
            web::post().to(webhooks::retry),
        )
        .route("/notifications", web::get().to(notifications::page))
        .route(
            "/notifications/stream",
            web::get().to(notifications::stream),
        )
        .route("/audit", web::get().to(trails::audit))
        .route("/sync-log", web::get().to(trails::sync_log))
        .route("/permissions", web::get().to(pages::permissions))
        .route("/permissions", web::post().to(pages::save_permissions))
        .route("/filters", web::post().to(pages::add_filter))
        .route("/filters/{id}/delete", web::post().to(pages::remove_filter))
        .route("/", web::get().to(home))
        .route("", web::get().to(pages::to_dashboard))
}
