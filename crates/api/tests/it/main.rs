//! Black-box HTTP tests of the server against real PostgreSQL and Redis.

mod auth;
mod clients;
mod config;
mod crm;
mod hardening;
mod helpers;
mod hosts;
mod invalidation;
mod isolation;
mod parity;
mod platform;
mod probes;
mod sessions;
mod sync;
