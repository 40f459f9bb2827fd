//! The Strata HTTP server: configuration, telemetry, middleware, routes and
//! the application factory.

pub mod auth;
pub mod batch;
pub mod cache;
pub mod client_ip;
pub mod configuration;
pub mod console;
pub mod error;
pub mod kv;
pub mod limits;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod rules;
pub mod schema;
pub mod startup;
pub mod state;
pub mod statistics;
pub mod stream;
pub mod telemetry;
pub mod webhooks;
