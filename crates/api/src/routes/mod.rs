//! Every route the server serves.

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::middleware::tenant::resolve_tenant;

/// A module's routes: registers each and lists them in `ROUTES` (method,
/// path below the module's mount point) so tests can check the OpenAPI
/// document covers every one.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        pub fn config(cfg: &mut actix_web::web::ServiceConfig) {
            $(cfg.route($path, actix_web::web::$method().to($handler));)*
        }
    };
}
pub(crate) use routes;

pub mod auth;
pub mod compat;
pub mod health;
pub mod offline;
pub mod platform;
pub mod records;
pub mod sync;
pub mod tenant;
pub mod users;

/// Every route the server answers: (method, full path). The OpenAPI
/// document must describe each; a test checks it.
pub fn served() -> Vec<(&'static str, String)> {
    let mut all: Vec<(&'static str, String)> = health::ROUTES
        .iter()
        .map(|(m, p)| (*m, (*p).to_owned()))
        .collect();
    for routes in [
        tenant::ROUTES,
        auth::ROUTES,
        users::ROUTES,
        records::branches::ROUTES,
        records::clients::ROUTES,
        records::contacts::ROUTES,
        records::tasks::ROUTES,
        records::notes::ROUTES,
        platform::ROUTES,
        sync::ROUTES,
        offline::ROUTES,
    ] {
        all.extend(routes.iter().map(|(m, p)| (*m, format!("/api/v1{p}"))));
    }
    all.extend(
        compat::ROUTES
            .iter()
            .map(|(m, p)| (*m, format!("/api/sync{p}"))),
    );
    all.push(("get", crate::openapi::DOCUMENT_PATH.to_owned()));
    all
}

/// Mounts the routes: probes on any host, the API behind tenant resolution.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::config)
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(resolve_tenant))
                .configure(tenant::config)
                .configure(auth::config)
                .configure(users::config)
                .configure(records::branches::config)
                .configure(records::clients::config)
                .configure(records::contacts::config)
                .configure(records::tasks::config)
                .configure(records::notes::config)
                .configure(platform::config)
                .configure(sync::config)
                .configure(offline::config),
        )
        .service(
            web::scope("/api/sync")
                .wrap(from_fn(resolve_tenant))
                .configure(compat::config),
        );
}
