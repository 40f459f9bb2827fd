//! Host → tenant resolution with an in-process cache that every server
//! process drops as soon as any tenant changes (Redis pub/sub).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::error::Error;
use crate::host::{HostError, HostTarget, classify};
use crate::registry::{Registry, Tenant, TenantStatus};

/// What a request is addressed to.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// The bare base domain.
    Platform,
    /// An active tenant.
    Tenant(Arc<Tenant>),
}

/// Why a request reaches no tenant.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("tenant `{0}` is suspended")]
    Suspended(String),
    #[error(transparent)]
    Registry(#[from] Error),
}

#[derive(Clone)]
enum Cached {
    Found(Arc<Tenant>),
    Missing,
}

struct Entry {
    value: Cached,
    stored: Instant,
}

/// Resolves hosts to tenants. Cheap to share behind an `Arc`.
pub struct Resolver {
    registry: Registry,
    base_domain: String,
    allow_tenant_header: bool,
    ttl: Duration,
    cache: RwLock<HashMap<String, Entry>>,
    /// Bumped whenever the cache is dropped, so a lookup that started before
    /// an invalidation does not store its (possibly stale) answer.
    generation: AtomicU64,
    /// True while the invalidation listener is subscribed; the cache is used
    /// only then.
    listening: AtomicBool,
    /// The registry's count of this process's own tenant changes when the
    /// cache last caught up with it: a change made here drops the cache
    /// without waiting for Redis to echo it.
    local_changes: AtomicU64,
}

impl Resolver {
    pub fn new(
        registry: Registry,
        base_domain: String,
        allow_tenant_header: bool,
        ttl: Duration,
    ) -> Self {
        Self {
            registry,
            base_domain,
            allow_tenant_header,
            ttl,
            cache: RwLock::default(),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            local_changes: AtomicU64::new(0),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Resolves the `Host` header (and the `X-Tenant` header, when enabled).
    pub async fn resolve(
        &self,
        host: &str,
        tenant_header: Option<&str>,
    ) -> Result<Resolution, ResolveError> {
        let target = match tenant_header.filter(|_| self.allow_tenant_header) {
            Some(slug) => crate::slug::Slug::parse(slug)
                .map(HostTarget::Subdomain)
                .map_err(|_| HostError::NoTenant)?,
            None => classify(host, &self.base_domain)?,
        };
        let key = match &target {
            HostTarget::Platform => return Ok(Resolution::Platform),
            HostTarget::Subdomain(slug) => format!("s:{slug}"),
            HostTarget::Custom(host) => format!("h:{host}"),
        };
        self.catch_up_with_local_changes();
        let cached = match self.cached(&key) {
            Some(hit) => hit,
            None => {
                let generation = self.generation.load(Ordering::Acquire);
                let found = match &target {
                    HostTarget::Subdomain(slug) => self.registry.find_by_slug(slug).await?,
                    HostTarget::Custom(host) => self.registry.find_by_domain(host).await?,
                    HostTarget::Platform => None,
                };
                let value = found.map_or(Cached::Missing, |t| Cached::Found(Arc::new(t)));
                self.store(key, value.clone(), generation);
                value
            }
        };
        match cached {
            Cached::Found(t) if t.status() == TenantStatus::Active => Ok(Resolution::Tenant(t)),
            Cached::Found(t) if t.status() == TenantStatus::Suspended => {
                Err(ResolveError::Suspended(t.slug().to_string()))
            }
            // Missing, or not yet / no longer serving.
            _ => Err(HostError::NoTenant.into()),
        }
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let cache = self.cache.read().ok()?;
        let entry = cache.get(key)?;
        (entry.stored.elapsed() < self.ttl).then(|| entry.value.clone())
    }

    fn store(&self, key: String, value: Cached, generation: u64) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        self.catch_up_with_local_changes();
        if let Ok(mut cache) = self.cache.write() {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            if cache.len() >= 100_000 {
                cache.clear();
            }
            cache.insert(
                key,
                Entry {
                    value,
                    stored: Instant::now(),
                },
            );
        }
    }

    /// Drops the cache if this process changed a tenant since it last looked.
    fn catch_up_with_local_changes(&self) {
        let now = self.registry.events().local_changes();
        if self.local_changes.swap(now, Ordering::AcqRel) != now {
            self.invalidate_all();
        }
    }

    /// Drops every cached resolution.
    pub fn invalidate_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            cache.clear();
        }
    }

    /// Listens on the registry's Redis channel and drops the cache on every
    /// tenant change, for as long as the returned task runs. While the
    /// subscription is down the cache is bypassed, and it is dropped again
    /// when the subscription comes back.
    pub fn spawn_invalidation_listener(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let events = this.registry.events().clone();
            let mut backoff = Duration::from_millis(100);
            loop {
                match events.client().get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(events.channel()).await {
                        Ok(()) => {
                            this.invalidate_all();
                            this.listening.store(true, Ordering::Release);
                            tracing::debug!(channel = events.channel(), "tenant cache listening");
                            backoff = Duration::from_millis(100);
                            let mut messages = pubsub.on_message();
                            while messages.next().await.is_some() {
                                this.invalidate_all();
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "redis subscribe failed"),
                    },
                    Err(err) => tracing::warn!(error = %err, "redis unreachable for tenant events"),
                }
                this.listening.store(false, Ordering::Release);
                this.invalidate_all();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        })
    }

    /// True while cache invalidations are being received.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}
