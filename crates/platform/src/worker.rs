//! The job worker: claims items ([`tenancy::jobs::claim`]) and runs each
//! by its job's kind, committing its outcome with its work. Every server
//! process runs a few; `migrator jobs work` runs them from a shell.

use std::time::Duration;

use tenancy::Registry;
use tenancy::jobs::{self, Claimed};
use tokio::sync::{broadcast, watch};

use crate::distribution::{self, ItemError};

/// Runs one item if one is ready: whether there was one.
pub async fn run_one(registry: &Registry) -> Result<bool, tenancy::Error> {
    let Some(claimed) = jobs::claim(registry).await? else {
        return Ok(false);
    };
    let outcome = dispatch(&claimed).await;
    let (job, tenant) = (claimed.job, claimed.tenant.slug().clone());
    match outcome {
        Ok(result) => claimed.complete(result).await?,
        Err(ItemError::Transient(e)) => {
            tracing::warn!(%job, tenant = %tenant, error = %e, "job item failed; it will be retried");
            claimed.fail(registry.db(), &e, true).await?;
        }
        Err(ItemError::Permanent(e)) => {
            tracing::warn!(%job, tenant = %tenant, error = %e, "job item failed");
            claimed.fail(registry.db(), &e, false).await?;
        }
    }
    Ok(true)
}

async fn dispatch(claimed: &Claimed) -> Result<serde_json::Value, ItemError> {
    match claimed.kind.as_str() {
        distribution::KIND => distribution::run_item(claimed).await,
        other => Err(ItemError::Permanent(format!("unknown job kind `{other}`"))),
    }
}

/// Runs items until `stop` turns true: when there is none, waits for a
/// wake-up on `wake` (new or retried work) or `idle`, whichever first.
pub async fn run(
    registry: Registry,
    mut wake: Option<broadcast::Receiver<String>>,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
) {
    let mut backoff = Duration::from_millis(100);
    while !*stop.borrow() {
        match run_one(&registry).await {
            Ok(true) => {
                backoff = Duration::from_millis(100);
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "job worker");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        let woken = async {
            match wake.as_mut() {
                Some(w) => {
                    let _ = w.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(idle) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Spawns `n` workers; they stop when `stop` turns true.
pub fn spawn(
    registry: &Registry,
    n: usize,
    wake: &broadcast::Sender<String>,
    stop: &watch::Receiver<bool>,
    idle: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            tokio::spawn(run(
                registry.clone(),
                Some(wake.subscribe()),
                stop.clone(),
                idle,
            ))
        })
        .collect()
}
