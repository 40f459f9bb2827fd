//! In-process caches of what PostgreSQL triggers announce changes of
//! (standings, tenant rules), and the one `LISTEN` connection that drops
//! their entries when a change commits.
//!
//! A cache answers only while its listener is connected; when the
//! connection is lost or comes back, everything is dropped, since
//! notifications may have been missed. A load that began before an
//! invalidation is not kept, so a change committed during the load is never
//! hidden.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgListener;

/// Entries of one cache, each with when it was loaded.
pub type Entries<K, V> = HashMap<K, (V, Instant)>;

/// A cache of values that notifications invalidate.
pub struct Cache<K, V> {
    entries: RwLock<Entries<K, V>>,
    listening: AtomicBool,
    /// Bumped by every invalidation.
    generation: AtomicU64,
    /// How long an entry is trusted at most, should a notification be lost
    /// without the listener noticing.
    max_age: Duration,
    /// Entries kept before the cache starts over.
    max_entries: usize,
}

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    pub fn new(max_age: Duration, max_entries: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            listening: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            max_age,
            max_entries,
        }
    }

    /// The cached value of `key`, while the listener is connected.
    pub fn get(&self, key: &K) -> Option<V> {
        if !self.is_listening() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, loaded)| loaded.elapsed() < self.max_age)
            .map(|(v, _)| v.clone())
    }

    /// Call before loading a value; pass the answer to [`Cache::keep`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `value` unless an invalidation came after `generation`.
    pub fn keep(&self, key: K, value: V, generation: u64) {
        if !self.is_listening() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock that invalidations take.
        if self.generation.load(Ordering::Acquire) == generation {
            if entries.len() >= self.max_entries {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    /// Drops what `drop` removes from the entries.
    pub fn invalidate(&self, drop: impl FnOnce(&mut Entries<K, V>)) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(&mut entries);
    }

    /// Drops every entry.
    pub fn forget_all(&self) {
        self.invalidate(HashMap::clear);
    }

    /// True while notifications are being received (and values cached).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The listener connected or was lost: drops everything either way.
    pub fn set_listening(&self, on: bool) {
        self.forget_all();
        self.listening.store(on, Ordering::Release);
    }
}

/// A cache that the notifications of one channel invalidate.
pub trait Invalidated: Send + Sync {
    /// The channel its triggers notify on.
    fn channel(&self) -> &'static str;
    /// Applies one notification's payload.
    fn invalidate(&self, payload: &str);
    /// The listener connected (`true`) or was lost (`false`): drop
    /// everything, and cache only while connected.
    fn set_listening(&self, on: bool);
}

/// What a request's own commit changed, applied to `standings` and `rules`
/// at once, as the notifications the triggers sent will be when they
/// arrive (same payloads); a write is noted in `written`.
pub fn own_commits(
    standings: Arc<crate::auth::standing::Standings>,
    rules: Arc<crate::rules::Rules>,
    written: Arc<crate::statistics::Written>,
) -> tenancy::scope::OnCommit {
    Arc::new(move |schema, changed| {
        if changed.wrote {
            written.note(schema);
        }
        if changed.rules {
            rules.invalidate(schema.as_str());
        }
        if let Some(who) = &changed.standing {
            standings.invalidate(&format!("{} {who}", schema.as_str()));
        }
    })
}

/// Listens for the channels of `caches` on a connection of its own,
/// reconnecting with backoff. `url` is PostgreSQL's own address: LISTEN
/// does not pass through a transaction-pooling PgBouncer.
pub fn spawn_listener(
    url: String,
    caches: Vec<Arc<dyn Invalidated>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let channels: Vec<&str> = caches.iter().map(|c| c.channel()).collect();
        let mut backoff = Duration::from_millis(100);
        loop {
            match PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen_all(channels.iter().copied()).await {
                    Ok(()) => {
                        caches.iter().for_each(|c| c.set_listening(true));
                        tracing::debug!(?channels, "cache listener connected");
                        backoff = Duration::from_millis(100);
                        // try_recv: a lost connection ends the loop
                        // instead of reconnecting silently.
                        while let Ok(Some(note)) = listener.try_recv().await {
                            for c in caches.iter().filter(|c| c.channel() == note.channel()) {
                                c.invalidate(note.payload());
                            }
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "LISTEN failed"),
                },
                Err(err) => tracing::warn!(error = %err, "cache listener cannot connect"),
            }
            caches.iter().for_each(|c| c.set_listening(false));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    })
}
