//! Platform operations: work an operator does across many tenants.
//!
//! - [`field_sets`]: the field sets operators author in `public`;
//! - [`distribution`]: landing one in chosen tenants by a strategy, as a
//!   durable job, and the dry run that reports what each strategy would
//!   change;
//! - [`worker`]: the loop every server process (and `migrator jobs work`)
//!   runs to claim and run job items.
//!
//! The jobs themselves (claiming, progress, cancel, retry) are
//! [`tenancy::jobs`]; a tenant's own field sets and the merge are
//! [`domain::custom`].

pub mod distribution;
pub mod error;
pub mod field_sets;
pub mod metrics;
pub mod worker;

pub use error::Error;
