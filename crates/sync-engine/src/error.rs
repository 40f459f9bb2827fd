//! Errors of the sync engine.

/// Why a push or pull was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    #[error("cursor {0}")]
    BadCursor(String),
    #[error("the cursor is older than the tombstone retention; start over without a cursor")]
    ResetRequired,
    #[error(transparent)]
    Forbidden(#[from] domain::access::Denied),
    #[error("{0}")]
    BadRequest(String),
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a batch holds at most {max} mutations, got {got}")]
    TooLarge { max: usize, got: usize },
    #[error("client id `{0}` belongs to another user")]
    ForeignClient(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}
