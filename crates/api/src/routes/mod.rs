//! Every route the server serves.

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::middleware::tenant::resolve_tenant;

pub mod auth;
pub mod crud;
pub mod health;
pub mod tenant;
pub mod users;

/// Mounts the routes: probes on any host, the API behind tenant resolution.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::config).service(
        web::scope("/api/v1")
            .wrap(from_fn(resolve_tenant))
            .configure(tenant::config)
            .configure(auth::config)
            .configure(users::config),
    );
}
