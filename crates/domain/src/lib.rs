//! The CRM domain: entities, validation and business rules. Knows nothing
//! of HTTP or SQL; the api crate maps these onto requests and rows.

pub mod password;
pub mod roles;
pub mod status;
pub mod validation;

pub use status::{ClientStatus, TaskPriority, TaskStatus, UnknownValue};
pub use validation::{FieldError, FieldErrors};
