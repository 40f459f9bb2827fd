//! Tenancy: the tenant registry, Host → tenant resolution, schema naming,
//! tenant-scoped transactions, provisioning and per-tenant migrations.
//!
//! Tenant data is reachable only through [`TenantTx`], which can only be
//! started from a [`Tenant`] read from the registry.

pub mod archive;
pub mod clone;
pub mod config;
pub mod db;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod host;
pub mod jobs;
pub mod migrate;
pub mod operators;
pub mod periodic;
pub mod provision;
pub mod registry;
pub mod resolver;
pub mod scope;
pub mod slug;
pub mod spares;
pub mod sql;
pub mod statistics;
pub mod templates;
pub mod writer;

pub use error::Error;
pub use events::TenantEvents;
pub use provision::{FirstAdmin, NewTenant, Verification};
pub use registry::{Registry, Tenant, TenantDomain, TenantStatus};
pub use resolver::{Resolution, ResolveError, Resolver};
pub use scope::TenantTx;
pub use slug::{SchemaName, Slug, SlugError};
pub use sql::stmt;
pub use writer::Writer;
#[cfg(feature = "testing")]
pub mod testing;
