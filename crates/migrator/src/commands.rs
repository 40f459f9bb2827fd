//! What each subcommand does.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::{MigrationStatus, MigratorTrait};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenancy::config::{ConfigError, DatabaseSettings, RedisSettings, TenancySettings};
use tenancy::error::parse_slug;
use tenancy::migrate::{self, TenantOutcome};
use tenancy::{FirstAdmin, NewTenant, Registry, Tenant, TenantEvents};

use crate::cli::{
    Cli, Command, EventsCommand, OperatorCommand, Selection, SharedCommand, TenantCommand,
    TenantsCommand,
};
use crate::output::Output;

/// Why a command did not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Tenancy(tenancy::Error),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl From<tenancy::Error> for CliError {
    fn from(err: tenancy::Error) -> Self {
        use tenancy::Error as E;
        match err {
            E::InvalidSlug { .. }
            | E::InvalidDisplayName(_)
            | E::InvalidDomain(..)
            | E::TenantExists(_)
            | E::DomainTaken(_)
            | E::OrphanSchema(_)
            | E::OperatorExists(_)
            | E::TenantNotFound(_)
            | E::Archive(_)
            | E::ArchiveNewer(_)
            | E::TemplateNotFound(_)
            | E::TemplateExists(_)
            | E::InvalidTemplate(_) => Self::Input(err.to_string()),
            other => Self::Tenancy(other),
        }
    }
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) | Self::Input(_) => ExitCode::from(2),
            Self::Tenancy(_) | Self::Database(_) => ExitCode::FAILURE,
        }
    }
}

#[derive(Deserialize)]
struct Settings {
    database: DatabaseSettings,
    redis: RedisSettings,
    tenancy: TenancySettings,
    archive: tenancy::config::ArchiveSettings,
}

pub(crate) struct Context {
    pub(crate) db: DatabaseConnection,
    pub(crate) registry: Registry,
    settings: Settings,
    pub(crate) out: Output,
}

async fn context(cli: &Cli, pool_size: u32) -> Result<Context, CliError> {
    let mut settings: Settings = tenancy::config::load()?;
    if let Some(url) = &cli.database_url {
        settings.database.url.clone_from(url);
    }
    settings.database.validate()?;
    settings.redis.validate()?;
    settings.tenancy.validate()?;
    let mut options = ConnectOptions::new(settings.database.url.clone());
    options
        .max_connections(pool_size)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(600))
        .connect_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .set_schema_search_path("public")
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    let events = TenantEvents::from_settings(&settings.redis)
        .map_err(|e| CliError::Input(format!("redis.url: {e}")))?;
    let registry = Registry::new(db.clone(), events);
    Ok(Context {
        db,
        registry,
        settings,
        out: Output { json: cli.json },
    })
}

pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match &cli.command {
        Command::Shared(cmd) => shared(&context(&cli, 1).await?, cmd).await,
        Command::MigrateTenant { slug, create, name } => {
            migrate_one(&context(&cli, 2).await?, slug, *create, name.as_deref()).await
        }
        Command::Tenants(TenantsCommand::Up {
            selection,
            concurrency,
            verify,
        }) => {
            let ctx = context(&cli, u32::from(*concurrency) + 1).await?;
            tenants_up(&ctx, selection, usize::from(*concurrency), source(*verify)).await
        }
        Command::Tenants(TenantsCommand::Spares { keep, drop, names }) => {
            let ctx = context(&cli, 1).await?;
            let registry = &ctx.registry;
            let changed = if *drop {
                registry.drop_spares().await?
            } else {
                registry
                    .fill_spares(
                        *keep as usize,
                        &tenancy::migrate::tenant_migrations(),
                        (*names).into(),
                    )
                    .await?
            };
            let ready = registry.spare_count().await?;
            let verb = if *drop { "dropped" } else { "made" };
            ctx.out.emit(&json!({ verb: changed, "ready": ready }), || {
                format!("{verb} {changed} spare schemas; {ready} ready")
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenants(TenantsCommand::Status { tenants, verify }) => {
            tenants_status(&context(&cli, 2).await?, tenants, source(*verify)).await
        }
        Command::Tenant(cmd) => tenant(&context(&cli, 2).await?, cmd).await,
        Command::Operator(OperatorCommand::Create { email, password }) => {
            let email = domain::validation::email(email)
                .map_err(|e| CliError::Input(format!("e-mail: {e}")))?;
            let password = domain::password::Password::parse(password)
                .map_err(|e| CliError::Input(format!("--password: {e}")))?;
            let ctx = context(&cli, 1).await?;
            let id = tenancy::operators::create(&ctx.db, &email, &password.hash()).await?;
            ctx.out.emit(&json!({ "id": id, "email": email }), || {
                format!("created operator {email}")
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Template(cmd) => crate::jobs::template(&context(&cli, 2).await?, cmd).await,
        Command::FieldSets(cmd) => crate::jobs::field_sets(&context(&cli, 8).await?, cmd).await,
        Command::Jobs(cmd) => {
            let workers = match cmd {
                crate::cli::JobsCommand::Work { workers, .. } => u32::from(*workers),
                _ => 1,
            };
            crate::jobs::jobs_command(&context(&cli, workers + 2).await?, cmd).await
        }
        Command::Events { action, tenant } => {
            events(&context(&cli, 1).await?, *action, tenant.as_deref()).await
        }
        Command::Operator(OperatorCommand::Revoke { email, disable }) => {
            let ctx = context(&cli, 1).await?;
            if !tenancy::operators::revoke(&ctx.db, email, *disable).await? {
                return Err(CliError::Input(format!("no operator {email}")));
            }
            ctx.out
                .emit(&json!({ "email": email, "disabled": disable }), || {
                    if *disable {
                        format!("disabled operator {email} and ended every session")
                    } else {
                        format!("ended every session of operator {email}")
                    }
                });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The archive key, from `archive.secret`.
fn archive_key(ctx: &Context) -> Result<tenancy::archive::ArchiveKey, CliError> {
    ctx.settings.archive.validate()?;
    if ctx.settings.archive.is_development() {
        eprintln!(
            "migrator: warning: archive.secret is the development secret; set \
             STRATA__ARCHIVE__SECRET to your own in production"
        );
    }
    Ok(tenancy::archive::ArchiveKey::new(
        &ctx.settings.archive.secret,
    ))
}

/// `<slug>: deliveries running; 3 waiting (the oldest 1.2 s), 0 failed`.
fn queue_line(slug: &str, q: &tenancy::deliveries::TenantQueue) -> String {
    format!(
        "{slug}: deliveries {}; {} waiting{}, {} failed",
        if q.paused { "paused" } else { "running" },
        q.pending,
        q.oldest_pending_secs
            .map(|a| format!(" (the oldest {a:.1} s)"))
            .unwrap_or_default(),
        q.failed
    )
}

/// `events status|pause|resume`, for the platform or one tenant.
async fn events(
    ctx: &Context,
    action: EventsCommand,
    tenant: Option<&str>,
) -> Result<ExitCode, CliError> {
    use tenancy::deliveries;
    let paused = match action {
        EventsCommand::Status => None,
        EventsCommand::Pause => Some(true),
        EventsCommand::Resume => Some(false),
    };
    let Some(slug) = tenant else {
        if let Some(p) = paused {
            deliveries::set_platform_paused(&ctx.db, p).await?;
        }
        let state = deliveries::platform(&ctx.db).await?;
        ctx.out.emit(&state, || match &state {
            Some(s) => {
                let mut text = format!(
                    "platform deliveries {}; {} tenant signal(s) due{}; {} waiting{}, {} failed",
                    if s.paused { "paused" } else { "running" },
                    s.signals,
                    s.oldest_signal_secs
                        .map(|a| format!(", the oldest {a:.1} s"))
                        .unwrap_or_default(),
                    s.pending,
                    s.oldest_pending_secs
                        .map(|a| format!(" (the oldest {a:.1} s)"))
                        .unwrap_or_default(),
                    s.failed,
                );
                for t in &s.tenants {
                    text.push_str(&format!("\n  {}", queue_line(&t.tenant, &t.queue)));
                }
                text
            }
            None => "no event control row: run `migrator shared up`".into(),
        });
        return Ok(ExitCode::SUCCESS);
    };
    let tenant = ctx.registry.get(&parse_slug(slug)?).await?;
    let tx = tenancy::TenantTx::begin(&ctx.db, &tenant).await?;
    if let Some(p) = paused {
        deliveries::set_tenant_paused(tx.conn(), tenant.schema().as_str(), p).await?;
    }
    let state = deliveries::tenant(tx.conn()).await?;
    tx.commit().await?;
    ctx.out.emit(&state, || queue_line(slug, &state));
    Ok(ExitCode::SUCCESS)
}

/// First key of the advisory lock held while shared migrations run.
const SHARED_LOCK: i64 = 0x5354_5241_0000_0001;

async fn shared(ctx: &Context, cmd: &SharedCommand) -> Result<ExitCode, CliError> {
    use migration_shared::Migrator;
    // The pool has one connection, so the session lock below is held by the
    // same session that runs the migrations.
    let lock = |f: &'static str| format!("SELECT {f}({SHARED_LOCK})");
    match cmd {
        SharedCommand::Status => {}
        _ => {
            ctx.db.execute_unprepared(&lock("pg_advisory_lock")).await?;
        }
    }
    let result = match cmd {
        SharedCommand::Up => Migrator::up(&ctx.db, None).await,
        SharedCommand::Down { steps } => Migrator::down(&ctx.db, Some(*steps)).await,
        SharedCommand::Status => Ok(()),
    };
    if !matches!(cmd, SharedCommand::Status) {
        ctx.db
            .execute_unprepared(&lock("pg_advisory_unlock"))
            .await?;
    }
    result?;
    let migrations = Migrator::get_migration_with_status(&ctx.db).await?;
    #[derive(Serialize)]
    struct Row {
        version: String,
        applied: bool,
    }
    let rows: Vec<Row> = migrations
        .iter()
        .map(|m| Row {
            version: m.name().to_owned(),
            applied: m.status() == MigrationStatus::Applied,
        })
        .collect();
    ctx.out.emit(&json!({ "shared": rows }), || {
        rows.iter()
            .map(|r| {
                format!(
                    "{}  {}",
                    if r.applied { "applied" } else { "pending" },
                    r.version
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(ExitCode::SUCCESS)
}

async fn migrate_one(
    ctx: &Context,
    slug: &str,
    create: bool,
    name: Option<&str>,
) -> Result<ExitCode, CliError> {
    let slug = parse_slug(slug)?;
    let outcome = match ctx.registry.find_by_slug(&slug).await? {
        Some(tenant) => {
            let applied =
                migrate::migrate_tenant(ctx.registry.ddl(), &tenant, &migrate::tenant_migrations())
                    .await?;
            if applied.is_empty() {
                TenantOutcome::UpToDate {
                    slug: slug.to_string(),
                }
            } else {
                TenantOutcome::Migrated {
                    slug: slug.to_string(),
                    applied,
                }
            }
        }
        None if create => {
            let new = NewTenant::new(
                slug.clone(),
                name.unwrap_or(slug.as_str()),
                &[],
                &ctx.settings.tenancy.base_domain,
            )?;
            ctx.registry.create(&new).await?;
            TenantOutcome::Migrated {
                slug: slug.to_string(),
                applied: migrate::tenant_migrations()
                    .iter()
                    .map(|m| m.name().to_owned())
                    .collect(),
            }
        }
        None => {
            return Err(CliError::Input(format!(
                "no tenant `{slug}`; pass --create to provision it"
            )));
        }
    };
    ctx.out.emit(&outcome, || match &outcome {
        TenantOutcome::UpToDate { slug } => format!("{slug}: up to date"),
        TenantOutcome::Migrated { slug, applied } => {
            format!("{slug}: applied {}", applied.join(", "))
        }
        TenantOutcome::Failed { slug, error } => format!("{slug}: {error}"),
    });
    Ok(ExitCode::SUCCESS)
}

/// The tenants a selection names; an unknown slug is an input error.
async fn select(ctx: &Context, slugs: &[String]) -> Result<Vec<Tenant>, CliError> {
    if slugs.is_empty() {
        return Ok(ctx.registry.list().await?);
    }
    let mut tenants = Vec::with_capacity(slugs.len());
    for s in slugs {
        tenants.push(ctx.registry.get(&parse_slug(s)?).await?);
    }
    Ok(tenants)
}

#[derive(Serialize, Default)]
struct Summary {
    tenants: usize,
    migrated: usize,
    up_to_date: usize,
    failed: usize,
    seconds: f64,
}

/// Where tenants' migration status is read: `--verify` reads every schema.
fn source(verify: bool) -> migrate::Source {
    if verify {
        migrate::Source::Schemas
    } else {
        migrate::Source::Shared
    }
}

async fn tenants_up(
    ctx: &Context,
    selection: &Selection,
    concurrency: usize,
    source: migrate::Source,
) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let tenants = select(
        ctx,
        if selection.all {
            &[]
        } else {
            &selection.tenants
        },
    )
    .await?;
    let set = migrate::tenant_migrations();
    let progress = ctx.out.progress(tenants.len());
    let outcomes = migrate::migrate_all(&ctx.registry, &tenants, &set, source, concurrency, |o| {
        progress.tenant_done(o)
    })
    .await?;
    progress.finish();
    let mut summary = Summary {
        tenants: outcomes.len(),
        seconds: started.elapsed().as_secs_f64(),
        ..Summary::default()
    };
    for o in &outcomes {
        match o {
            TenantOutcome::UpToDate { .. } => summary.up_to_date += 1,
            TenantOutcome::Migrated { .. } => summary.migrated += 1,
            TenantOutcome::Failed { .. } => summary.failed += 1,
        }
    }
    let failed: Vec<&TenantOutcome> = outcomes.iter().filter(|o| o.is_failure()).collect();
    ctx.out.emit(
        &json!({ "summary": &summary, "tenants": &outcomes }),
        || {
            let mut text = format!(
                "{} tenants: {} migrated, {} up to date, {} failed ({:.2}s)",
                summary.tenants,
                summary.migrated,
                summary.up_to_date,
                summary.failed,
                summary.seconds
            );
            for f in &failed {
                text.push_str(&format!("\nfailed: {}", f.slug()));
            }
            text
        },
    );
    Ok(if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn tenants_status(
    ctx: &Context,
    slugs: &[String],
    source: migrate::Source,
) -> Result<ExitCode, CliError> {
    let tenants = select(ctx, slugs).await?;
    let statuses =
        migrate::status(&ctx.db, &tenants, &migrate::tenant_migrations(), source).await?;
    let behind = statuses.iter().filter(|s| !s.is_current()).count();
    ctx.out
        .emit(&json!({ "tenants": &statuses, "behind": behind }), || {
            let mut lines: Vec<String> = statuses
                .iter()
                .map(|s| match (&s.problem, s.pending.is_empty()) {
                    (Some(p), _) => format!("{:<40} PROBLEM  {p}", s.slug),
                    (None, true) => format!("{:<40} current  {} applied", s.slug, s.applied.len()),
                    (None, false) => format!(
                        "{:<40} pending  {} applied; pending: {}",
                        s.slug,
                        s.applied.len(),
                        s.pending.join(", ")
                    ),
                })
                .collect();
            lines.push(format!(
                "{} tenants, {} need migrating",
                statuses.len(),
                behind
            ));
            lines.join("\n")
        });
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct TenantLine<'a> {
    #[serde(flatten)]
    tenant: &'a Tenant,
    schema: &'a str,
}

fn tenant_line(t: &Tenant) -> String {
    format!(
        "{:<40} {:<10} {:<44} {}",
        t.slug(),
        t.status().as_str(),
        t.schema(),
        t.display_name()
    )
}

/// Checks and hashes the first administrator's credentials.
fn first_admin(
    email: &str,
    password: Option<&str>,
    name: Option<&str>,
) -> Result<FirstAdmin, CliError> {
    let email = domain::validation::email(email)
        .map_err(|e| CliError::Input(format!("--admin-email: {e}")))?;
    let password = domain::password::Password::parse(password.unwrap_or_default())
        .map_err(|e| CliError::Input(format!("--admin-password: {e}")))?;
    let full_name = domain::validation::text(name.unwrap_or(&email), 1, 200)
        .map_err(|e| CliError::Input(format!("--admin-name: {e}")))?;
    Ok(FirstAdmin {
        email,
        full_name,
        password_hash: password.hash(),
    })
}

async fn tenant(ctx: &Context, cmd: &TenantCommand) -> Result<ExitCode, CliError> {
    let show = |t: &Tenant, verb: &str| {
        ctx.out.emit(
            &TenantLine {
                tenant: t,
                schema: t.schema().as_str(),
            },
            || format!("{verb} {}", tenant_line(t)),
        );
    };
    match cmd {
        TenantCommand::Create {
            slug,
            name,
            domains,
            admin_email,
            admin_password,
            admin_name,
            template,
        } => {
            let slug = parse_slug(slug)?;
            let mut new = NewTenant::new(
                slug.clone(),
                name.as_deref().unwrap_or(slug.as_str()),
                domains,
                &ctx.settings.tenancy.base_domain,
            )?;
            if let Some(t) = template {
                tenancy::templates::get(&ctx.db, t).await?;
                new = new.from_template(t);
            }
            if let Some(email) = admin_email {
                let admin = first_admin(email, admin_password.as_deref(), admin_name.as_deref())?;
                new = new.with_admin(admin);
            }
            let t = ctx.registry.create(&new).await?;
            show(&t, "created");
        }
        TenantCommand::Clone { source, slug, name } => {
            let from = ctx.registry.get(&parse_slug(source)?).await?;
            let slug = parse_slug(slug)?;
            let new = NewTenant::new(
                slug.clone(),
                name.as_deref().unwrap_or(from.display_name()),
                &[],
                &ctx.settings.tenancy.base_domain,
            )?;
            let started = std::time::Instant::now();
            let cloned = ctx.registry.clone_tenant(from.slug(), &new).await?;
            let rows: u64 = cloned.tables.values().sum();
            ctx.out.emit(&cloned, || {
                format!(
                    "cloned {} as {slug}: {rows} rows in {} tables ({:.2}s)",
                    from.slug().as_str(),
                    cloned.tables.len(),
                    started.elapsed().as_secs_f64()
                )
            });
        }
        TenantCommand::Export { slug, out } => {
            let key = archive_key(ctx)?;
            let slug = parse_slug(slug)?;
            let started = std::time::Instant::now();
            let to_stdout = out.as_os_str() == "-";
            let exported = if to_stdout {
                ctx.registry
                    .export_tenant(&slug, &key, std::io::stdout().lock())
                    .await?
            } else {
                let file = std::fs::File::create(out)
                    .map_err(|e| CliError::Input(format!("{}: {e}", out.display())))?;
                ctx.registry
                    .export_tenant(&slug, &key, std::io::BufWriter::new(file))
                    .await?
            };
            let secs = started.elapsed().as_secs_f64();
            if !to_stdout {
                ctx.out.emit(&exported, || {
                    format!(
                        "exported {slug} to {}: {} rows in {} tables, {} bytes ({secs:.2}s, {:.0} rows/s)",
                        out.display(),
                        exported.rows,
                        exported.tables.len(),
                        exported.bytes,
                        exported.rows as f64 / secs.max(0.001)
                    )
                });
            }
        }
        TenantCommand::Import { slug, from, name } => {
            let key = archive_key(ctx)?;
            let file = std::fs::File::open(from)
                .map_err(|e| CliError::Input(format!("{}: {e}", from.display())))?;
            let (manifest, _) =
                tenancy::archive::read_archive(&key, std::io::BufReader::new(&file))?;
            let new = NewTenant::new(
                parse_slug(slug)?,
                name.as_deref().unwrap_or(&manifest.display_name),
                &[],
                &ctx.settings.tenancy.base_domain,
            )?;
            let file = std::fs::File::open(from)
                .map_err(|e| CliError::Input(format!("{}: {e}", from.display())))?;
            let started = std::time::Instant::now();
            let imported = ctx
                .registry
                .import_tenant(&new, &key, std::io::BufReader::new(file))
                .await?;
            let secs = started.elapsed().as_secs_f64();
            ctx.out.emit(&imported, || {
                format!(
                    "imported {} as {}: {} rows in {} tables ({secs:.2}s, {:.0} rows/s){}",
                    imported.source,
                    imported.tenant,
                    imported.rows,
                    imported.tables.len(),
                    imported.rows as f64 / secs.max(0.001),
                    if imported.migrated.is_empty() {
                        String::new()
                    } else {
                        format!("; migrated forward: {}", imported.migrated.join(", "))
                    }
                )
            });
        }
        TenantCommand::List => {
            let tenants = ctx.registry.list().await?;
            let rows: Vec<TenantLine> = tenants
                .iter()
                .map(|t| TenantLine {
                    tenant: t,
                    schema: t.schema().as_str(),
                })
                .collect();
            ctx.out.emit(&rows, || {
                tenants
                    .iter()
                    .map(tenant_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TenantCommand::Suspend { slug } => {
            show(
                &ctx.registry.suspend(&parse_slug(slug)?).await?,
                "suspended",
            );
        }
        TenantCommand::Resume { slug } => {
            show(&ctx.registry.resume(&parse_slug(slug)?).await?, "resumed");
        }
        TenantCommand::Delete { slug, confirm } => {
            let parsed = parse_slug(slug)?;
            if confirm.as_deref() != Some(slug.as_str()) {
                return Err(CliError::Input(format!(
                    "deleting drops every table of `{slug}`; repeat the slug to confirm: --confirm {slug}"
                )));
            }
            show(&ctx.registry.delete(&parsed).await?, "deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
