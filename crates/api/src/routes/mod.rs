//! Every route the server serves.

use actix_web::middleware::from_fn;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::limits::limit_requests;
use crate::middleware::tenant::resolve_tenant;

pub mod audit;
pub mod auth;
pub mod compat;
pub mod field_sets;
pub mod health;
pub mod notifications;
pub mod offline;
pub mod platform;
pub mod platform_ops;
pub mod records;
pub mod sync;
pub mod tenant;
pub mod users;
pub mod webhooks;

/// Mounts the routes: probes on any host, the API behind tenant resolution
/// and request limits.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.configure(health::config)
        .service(
            scope("/api/v1")
                .wrap(from_fn(limit_requests))
                .wrap(from_fn(resolve_tenant))
                .configure(tenant::config)
                .configure(auth::config)
                .configure(users::config)
                .configure(records::branches::config)
                .configure(records::clients::config)
                .configure(records::contacts::config)
                .configure(records::tasks::config)
                .configure(records::notes::config)
                .configure(field_sets::config)
                .configure(platform::config)
                .configure(platform_ops::config)
                .configure(audit::config)
                .configure(webhooks::config)
                .configure(notifications::config)
                .configure(sync::config)
                .configure(offline::config),
        )
        .service(
            scope("/api/sync")
                .wrap(from_fn(limit_requests))
                .wrap(from_fn(resolve_tenant))
                .configure(compat::config),
        );
}
