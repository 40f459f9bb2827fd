//! Authentication of tenant users: access tokens (JWT), refresh-token
//! sessions with rotation and reuse detection, login throttling, and the
//! extractor that admits a request.

pub mod hashing;
pub mod operator;
pub mod sessions;
pub mod sign_in;
pub mod standing;
pub mod throttle;
pub mod tokens;
pub mod user;

pub use tokens::{Claims, TokenKeys};
pub use user::AuthUser;
