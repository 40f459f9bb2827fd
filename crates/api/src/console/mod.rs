//! The web console: HTML pages rendered on the server (maud, checked at
//! compile time), a stylesheet and one small script served from the
//! binary, under a strict Content-Security-Policy. Pages call the same
//! services as the JSON API (the access matrix, the record service, the
//! user and sync settings functions): there is no second copy of a rule.
//! See docs/architecture.md, "The console".

pub mod pages;
mod session;
pub mod trails;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::middleware::tenant::resolve_tenant;

/// The console's Content-Security-Policy: everything from this origin,
/// nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/console` scope, on tenant hosts.
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
        .route("/sign-in", web::get().to(pages::sign_in_form))
        .route("/sign-in", web::post().to(pages::sign_in))
        .route("/sign-out", web::post().to(pages::sign_out))
        .route("/users", web::get().to(pages::users))
        .route("/users", web::post().to(pages::create_user))
        .route("/users/{id}/disable", web::post().to(pages::disable_user))
        .route("/audit", web::get().to(trails::audit))
        .route("/sync-log", web::get().to(trails::sync_log))
        .route("/permissions", web::get().to(pages::permissions))
        .route("/permissions", web::post().to(pages::save_permissions))
        .route("/", web::get().to(pages::dashboard))
        .route("", web::get().to(pages::to_dashboard))
}
