//! Builds the application: connections, the tenant resolver and its cache
//! listener, and the HTTP server bound to its listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use tenancy::{Registry, Resolver, TenantEvents};
use utoipa_actix_web::AppExt;

use crate::auth::TokenKeys;
use crate::auth::standing::Standings;
use crate::client_ip::TrustedProxies;
use crate::configuration::Settings;
use crate::error::ApiError;
use crate::kv::Kv;
use crate::limits::Concurrency;
use crate::middleware::request_span::request_span;
pub use crate::state::AppState;

/// Largest JSON body accepted (a full push batch fits).
pub const JSON_LIMIT: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] tenancy::config::ConfigError),
    #[error("cannot connect to PostgreSQL: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("server.trusted_proxies: {0}")]
    Proxies(String),
    #[error("webhook client: {0}")]
    Dispatcher(reqwest::Error),
    #[error("events.allow_targets: {0}")]
    Targets(String),
    #[error("bad Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A built server, listening but not yet running.
pub struct Application {
    port: u16,
    server: Server,
    listener_task: tokio::task::JoinHandle<()>,
    purge_task: tokio::task::JoinHandle<()>,
    dispatch_task: tokio::task::JoinHandle<()>,
    stream_task: tokio::task::JoinHandle<()>,
    standing_task: tokio::task::JoinHandle<()>,
    signup_purge_task: tokio::task::JoinHandle<()>,
    spare_task: Option<tokio::task::JoinHandle<()>>,
    statistics_task: Option<tokio::task::JoinHandle<()>>,
    stop_jobs: tokio::sync::watch::Sender<bool>,
    job_tasks: Vec<tokio::task::JoinHandle<()>>,
    resolver: Arc<Resolver>,
    standings: Arc<Standings>,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let addr = settings.listen_addr()?;
        let db = tenancy::db::connect(&settings.database).await?;
        let reads = tenancy::db::ReadPools::connect(&settings.database).await?;
        let redis = redis::Client::open(settings.redis.url.as_str())?;
        let events = TenantEvents::new(redis.clone(), &settings.redis.prefix);
        let registry = Registry::new(db.clone(), events);
        let resolver = Arc::new(Resolver::new(
            registry,
            settings.tenancy.base_domain.clone(),
            settings.tenancy.allow_tenant_header,
            Duration::from_secs(settings.tenancy.cache_ttl_secs),
        ));
        let listener_task = resolver.spawn_invalidation_listener();
        let purge_task = sync_engine::retention::spawn_purge(
            resolver.registry().clone(),
            Duration::from_secs(settings.sync.tombstone_retention_days * 86_400),
            i32::try_from(settings.audit.retention_days).unwrap_or(i32::MAX),
            Duration::from_secs(settings.sync.purge_interval_secs),
        );
        let signup_purge_task = spawn_signup_purge(
            resolver.registry().clone(),
            Duration::from_secs(settings.sync.purge_interval_secs),
        );
        let spare_task = (settings.tenancy.spare_schemas > 0).then(|| {
            spawn_spare_keeper(
                resolver.registry().clone(),
                settings.tenancy.spare_schemas,
                settings.tenancy.spare_names,
                Duration::from_secs(2),
            )
        });
        let allowed_targets =
            crate::webhooks::allowed(&settings.events).map_err(StartupError::Targets)?;
        let (wakeups, stream_task) =
            crate::stream::Wakeups::spawn(settings.database.listen_url().to_owned());
        let dispatch_task = crate::webhooks::spawn(
            db.clone(),
            resolver.registry().clone(),
            settings.events.clone(),
            allowed_targets.clone(),
            wakeups.deliveries(),
        )
        .map_err(StartupError::Dispatcher)?;
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let job_tasks = platform::worker::spawn(
            resolver.registry(),
            settings.jobs.workers,
            wakeups.jobs(),
            &jobs_stopped,
            Duration::from_millis(settings.jobs.idle_poll_ms.max(50)),
        );
        let standings = Arc::new(Standings::new(settings.auth.access_ttl_secs + 60));
        let rules = Arc::new(crate::rules::Rules::default());
        let standing_task = crate::cache::spawn_listener(
            settings.database.listen_url().to_owned(),
            vec![
                Arc::clone(&standings) as Arc<dyn crate::cache::Invalidated>,
                Arc::clone(&rules) as Arc<dyn crate::cache::Invalidated>,
            ],
        );
        let written = Arc::new(crate::statistics::Written::default());
        let statistics_task = (settings.database.statistics_refresh_ms > 0).then(|| {
            crate::statistics::spawn_keeper(
                db.clone(),
                Arc::clone(&written),
                Duration::from_millis(settings.database.statistics_refresh_ms),
            )
        });
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .port();
        let state = web::Data::new(AppState {
            db,
            prepared_statements: settings.database.prepared_statements,
            reads,
            kv: Kv::new(redis, &settings.redis.prefix),
            resolver: Arc::clone(&resolver),
            tokens: TokenKeys::new(
                &settings.auth.jwt_secret,
                settings.auth.access_ttl_secs,
                settings.auth.refresh_ttl_secs,
            ),
            on_commit: crate::cache::own_commits(
                Arc::clone(&standings),
                Arc::clone(&rules),
                Arc::clone(&written),
            ),
            standings: Arc::clone(&standings),
            rules,
            auth: settings.auth.clone(),
            limits: settings.limits.clone(),
            signup: settings.signup.clone(),
            audit: settings.audit.clone(),
            allowed_targets,
            wakeups,
            leases: crate::limits::Leases::default(),
            concurrency: Concurrency::from_settings(
                &settings.limits,
                settings.database.pool_size,
                Duration::from_millis(settings.database.acquire_timeout_ms),
            ),
            proxies: TrustedProxies::parse(&settings.server.trusted_proxies)
                .map_err(StartupError::Proxies)?,
            base_domain: settings.tenancy.base_domain.clone(),
            cursors: sync_engine::CursorKey::new(&settings.cursor_secret()),
            console_key: {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(b"strata-console-csrf:");
                h.update(settings.auth.jwt_secret.as_bytes());
                h.finalize().to_vec()
            },
            archive: tenancy::archive::ArchiveKey::new(&settings.archive.secret),
            archive_max_bytes: usize::try_from(settings.archive.max_upload_mib << 20)
                .unwrap_or(usize::MAX),
        });
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let document = crate::openapi::document();
        let server = HttpServer::new(move || {
            App::new()
                .service(crate::openapi::swagger_ui(document.clone()))
                .into_utoipa_app()
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default().limit(JSON_LIMIT).error_handler(
                        |err, _| match err {
                            actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                            | actix_web::error::JsonPayloadError::Overflow { .. } => {
                                ApiError::TooLarge(format!(
                                    "request bodies are limited to {JSON_LIMIT} bytes"
                                ))
                                .into()
                            }
                            other => ApiError::BadBody(other.to_string()).into(),
                        },
                    ),
                )
                .app_data(web::PayloadConfig::new(JSON_LIMIT))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|err, _| ApiError::BadBody(err.to_string()).into()),
                )
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ApiError::NotFound("record").into()),
                )
                .configure(crate::routes::config)
                .into_app()
                .service(crate::console::scope())
                .wrap(from_fn(crate::middleware::protect::small_bodies))
                .wrap(crate::middleware::protect::security_headers())
                .wrap(Compress::default())
                .wrap(from_fn(request_span))
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::RouteNotFound)
                }))
        })
        .workers(workers)
        // Responses go out as soon as they are written: with Nagle's
        // algorithm a response written in two parts (a compressed body's
        // last bytes) waited for the client's delayed ACK, 40 ms.
        .on_connect(|conn, _| {
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .run();
        Ok(Self {
            port,
            server,
            listener_task,
            purge_task,
            dispatch_task,
            stream_task,
            standing_task,
            signup_purge_task,
            spare_task,
            statistics_task,
            stop_jobs,
            job_tasks,
            resolver,
            standings,
        })
    }

    /// The bound port (useful when `server.listen` asks for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The tenant resolver (to wait until its cache listener is up).
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::clone(&self.resolver)
    }

    /// The cache of account standings (to wait until its listener is up).
    pub fn standings(&self) -> Arc<Standings> {
        Arc::clone(&self.standings)
    }

    /// Serves until the process is told to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.listener_task.abort();
        self.purge_task.abort();
        self.dispatch_task.abort();
        self.stream_task.abort();
        self.standing_task.abort();
        self.signup_purge_task.abort();
        for task in [&self.spare_task, &self.statistics_task]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        // Workers finish the item in hand (its transaction commits or
        // rolls back whole either way).
        let _ = self.stop_jobs.send(true);
        for task in self.job_tasks {
            let _ = task.await;
        }
        result
    }
}

/// Keeps `target` spare schemas ready (see `tenancy::spares`), named as
/// `names` says once taken, looking every `interval`.
fn spawn_spare_keeper(
    registry: tenancy::Registry,
    target: u32,
    names: tenancy::spares::SpareNames,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let migrations = Arc::new(tenancy::migrate::tenant_migrations());
    tenancy::periodic::every(interval, move || {
        let (registry, migrations) = (registry.clone(), Arc::clone(&migrations));
        async move {
            match registry
                .fill_spares(target as usize, &migrations, names)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(made = n, "spare schemas made"),
                Err(err) => tracing::warn!(error = %err, "making spare schemas failed"),
            }
        }
    })
}

/// Removes, every `interval`, tenants whose sign-up was not verified in
/// time (each server does; the work is idempotent).
fn spawn_signup_purge(
    registry: tenancy::Registry,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tenancy::periodic::every(interval, move || {
        let registry = registry.clone();
        async move {
            match registry.purge_unverified().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed unverified sign-ups"),
                Err(err) => tracing::warn!(error = %err, "purging unverified sign-ups failed"),
            }
        }
    })
}
