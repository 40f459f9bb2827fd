//! Password hashing and checking, bounded: argon2id takes 19 MiB and tens
//! of milliseconds per call, so at most one runs per CPU core, off the
//! async runtime; the rest wait their turn. A burst of sign-ins (even for
//! unknown accounts) costs time, not memory.

use std::sync::OnceLock;

use domain::password::{self, Password};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Callers waiting for a turn beyond which a new one is refused with 503:
/// past this a sign-in would wait for seconds anyway.
const MAX_WAITING: usize = 256;

fn turns() -> &'static Semaphore {
    static TURNS: OnceLock<Semaphore> = OnceLock::new();
    TURNS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// Runs `work` when a turn is free, on a blocking thread.
async fn in_turn<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    static WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    use std::sync::atomic::Ordering;
    if WAITING.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
        WAITING.fetch_sub(1, Ordering::AcqRel);
        return Err(ApiError::Unavailable("password checks"));
    }
    let permit = turns().acquire().await;
    WAITING.fetch_sub(1, Ordering::AcqRel);
    let _permit = permit.map_err(|_| ApiError::Internal("password pool closed".into()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Whether `candidate` matches `hash`; with no hash (no such account, or no
/// password set) a dummy one is checked, so a miss costs as long as a
/// wrong password.
pub async fn verify(candidate: String, hash: Option<String>) -> Result<bool, ApiError> {
    let hash = hash.unwrap_or_else(|| password::dummy_hash().to_owned());
    in_turn(move || password::verify(&candidate, &hash)).await
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: Password) -> Result<String, ApiError> {
    in_turn(move || password.hash()).await
}
