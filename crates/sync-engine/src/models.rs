//! The synced models: the CRM models as `domain` describes them (fields,
//! types, who writes each, private fields, conflict strategy). Nothing here
//! restates a field; a column added to an entity syncs with no change here.

pub use domain::record::{Field, Kind, Owner, Strategy, model, models};

/// A synced model.
pub type Model = domain::Spec;
