//! The CRM domain: entities, validation and business rules. Knows nothing
//! of HTTP or SQL; the api crate maps these onto requests and rows.

pub mod status;

pub use status::{ClientStatus, TaskPriority, TaskStatus, UnknownValue};
