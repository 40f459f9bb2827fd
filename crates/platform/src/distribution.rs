//! Distributing a platform field set to tenants: a durable job with one
//! item per tenant, each landing the set by the chosen strategy in one
//! tenant transaction ([`domain::custom::merge::land`]). The job records
//! who, when, what (the set as distributed, whole) and each tenant's
//! outcome.
//!
//! A dry run lands the set by every strategy in each tenant inside a
//! transaction it rolls back: the same code as the real run, so it reports
//! exactly what the run would do (unless the tenant changes in between).

use std::collections::BTreeMap;

use domain::custom::merge::{Outcome, PlatformSet, Strategy, land};
use domain::store::StoreError;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use tenancy::jobs::{self, Claimed, NewJob};
use tenancy::{Registry, Slug, TenantStatus, TenantTx};
use uuid::Uuid;

use crate::error::Error;
use crate::field_sets;

/// The job kind of a distribution.
pub const KIND: &str = "distribute";

/// Which tenants a distribution goes to: exactly one of `all`, `tenants`
/// or a filter (`search`, `status`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Every active or suspended tenant.
    #[serde(default)]
    pub all: bool,
    /// These tenants, by slug.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Tenants whose slug or name contains this text (any case).
    #[serde(default)]
    pub search: Option<String>,
    /// Tenants of this status (`active`, `suspended`).
    #[serde(default)]
    pub status: Option<String>,
}

impl Targets {
    /// The slugs targeted, in order; unknown slugs are a field error.
    pub async fn resolve(&self, registry: &Registry) -> Result<Vec<Slug>, Error> {
        let filter = self.search.is_some() || self.status.is_some();
        let given = [self.all, !self.tenants.is_empty(), filter]
            .iter()
            .filter(|g| **g)
            .count();
        if given != 1 {
            return Err(Error::field(
                "targets",
                "give exactly one of all, tenants, or a filter (search, status)",
            ));
        }
        let every = registry.list().await?;
        if !self.tenants.is_empty() {
            let mut out = Vec::new();
            let mut errors = domain::FieldErrors::new();
            for (i, t) in self.tenants.iter().enumerate() {
                match every.iter().find(|x| x.slug().as_str() == t) {
                    Some(x) => out.push(x.slug().clone()),
                    None => errors.add(&format!("tenants[{i}]"), "is not a tenant"),
                }
            }
            out.dedup();
            return errors.finish(|| out).map_err(Error::Invalid);
        }
        let status = match self.status.as_deref() {
            None => None,
            Some("active") => Some(TenantStatus::Active),
            Some("suspended") => Some(TenantStatus::Suspended),
            Some(_) => return Err(Error::field("status", "must be active or suspended")),
        };
        let needle = self.search.as_deref().map(str::to_lowercase);
        if let Some(n) = &needle {
            domain::check::parameter(n, 200).map_err(|m| Error::field("search", m))?;
        }
        Ok(every
            .into_iter()
            .filter(|t| match status {
                Some(s) => t.status() == s,
                None => matches!(t.status(), TenantStatus::Active | TenantStatus::Suspended),
            })
            .filter(|t| {
                needle.as_ref().is_none_or(|n| {
                    t.slug().as_str().contains(n.as_str())
                        || t.display_name().to_lowercase().contains(n.as_str())
                })
            })
            .map(|t| t.slug().clone())
            .collect())
    }
}

/// What a distribution job carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub set: PlatformSet,
    pub strategy: Strategy,
}

/// Starts distributing platform set `set` to `targets` by `strategy`, as
/// a job; returns its id.
pub async fn start(
    registry: &Registry,
    set: Uuid,
    targets: &Targets,
    strategy: Strategy,
    concurrency: i32,
    by: &str,
) -> Result<Uuid, Error> {
    let set = field_sets::get(registry.db(), set).await?;
    let tenants = targets.resolve(registry).await?;
    if tenants.is_empty() {
        return Err(Error::field("targets", "match no tenant"));
    }
    let summary = format!(
        "distribute {}/{} v{} ({}) to {} tenant(s)",
        set.model,
        set.name,
        set.version,
        strategy.as_str(),
        tenants.len()
    );
    let params = Params {
        set: set.as_distributed(),
        strategy,
    };
    let job = NewJob {
        kind: KIND.into(),
        params: serde_json::to_value(&params)
            .map_err(|e| Error::Database(sea_orm::DbErr::Custom(e.to_string())))?,
        summary,
        tenants,
        concurrency,
        max_attempts: 3,
        created_by: by.to_owned(),
    };
    Ok(jobs::create(registry.db(), &job).await?)
}

/// Why an item did not land.
pub enum ItemError {
    /// Worth another attempt (the database, a lock).
    Transient(String),
    /// The same input fails the same way (a key another set uses).
    Permanent(String),
}

fn item_error(e: StoreError) -> ItemError {
    match e {
        StoreError::Invalid(errors) => ItemError::Permanent(
            errors
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        StoreError::Conflict(m) => ItemError::Permanent(m),
        other => ItemError::Transient(other.to_string()),
    }
}

/// Runs one claimed item of a distribution: its outcome as JSON.
pub async fn run_item(claimed: &Claimed) -> Result<serde_json::Value, ItemError> {
    let params: Params = serde_json::from_value(claimed.params.clone())
        .map_err(|e| ItemError::Permanent(format!("unreadable job: {e}")))?;
    let outcome = land(claimed.tx().conn(), &params.set, params.strategy)
        .await
        .map_err(item_error)?;
    serde_json::to_value(outcome).map_err(|e| ItemError::Permanent(e.to_string()))
}

/// What one strategy would do in one tenant: its outcome, or why it
/// would fail.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Would {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What each strategy would do in one tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub tenant: String,
    /// By strategy (`skip`, `overwrite`, `merge`).
    pub strategies: BTreeMap<String, Would>,
}

/// Lands the set by every strategy in each target tenant and rolls it all
/// back: what a distribution would do, per tenant and strategy.
pub async fn dry_run(
    registry: &Registry,
    set: Uuid,
    targets: &Targets,
) -> Result<Vec<Preview>, Error> {
    let set = field_sets::get(registry.db(), set).await?.as_distributed();
    let tenants = targets.resolve(registry).await?;
    let mut out = Vec::with_capacity(tenants.len());
    for slug in tenants {
        let tenant = registry.get(&slug).await?;
        let tx = TenantTx::begin(registry.db(), &tenant).await?;
        let mut strategies = BTreeMap::new();
        for strategy in Strategy::ALL {
            let attempt = tx.conn().begin().await?;
            let outcome = land(&attempt, &set, strategy).await;
            attempt.rollback().await?;
            let shown = match outcome {
                Ok(o) => Would {
                    outcome: Some(o),
                    error: None,
                },
                Err(e) => Would {
                    outcome: None,
                    error: Some(match item_error(e) {
                        ItemError::Transient(m) | ItemError::Permanent(m) => m,
                    }),
                },
            };
            strategies.insert(strategy.as_str().to_owned(), shown);
        }
        tx.rollback().await?;
        out.push(Preview {
            tenant: slug.as_str().to_owned(),
            strategies,
        });
    }
    Ok(out)
}
