//! Black-box HTTP tests of the server against real PostgreSQL and Redis.

mod audit;
mod auth;
/// The load generator and server process the benchmarks use.
#[path = "../../benches/common/mod.rs"]
mod bench_common;
mod clients;
mod config;
mod console;
mod crm;
mod custom_fields;
mod hardening;
mod helpers;
mod hosts;
mod invalidation;
mod isolation;
mod limits;
mod model;
mod notifications;
mod parity;
mod plans;
mod platform;
mod probes;
mod sessions;
mod sync;
mod webhooks;
