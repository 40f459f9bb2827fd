//! The command line.

use clap::{Args, Parser, Subcommand};

/// Strata's migrator: shared and per-tenant migrations, tenant lifecycle.
///
/// Exit codes: 0 success; 1 something failed (for `tenants up`, at least
/// one tenant); 2 bad input or configuration.
#[derive(Debug, Parser)]
#[command(name = "migrator", version, about, long_about = None)]
pub struct Cli {
    /// PostgreSQL URL (default: database.url from configuration).
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrations of the public schema (the tenant registry).
    #[command(subcommand)]
    Shared(SharedCommand),
    /// Apply one tenant's pending migrations.
    MigrateTenant {
        slug: String,
        /// Create the tenant first if it does not exist.
        #[arg(long)]
        create: bool,
        /// Display name when creating (default: the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// Migrations across many tenants.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Tenant lifecycle: create, list, suspend, resume, delete.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Platform operators, who sign in on the bare base domain.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Tenant templates: a tenant's configuration, captured to provision
    /// others from (`tenant create --template`).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Platform field sets: author them and distribute them to tenants.
    #[command(subcommand, name = "field-sets")]
    FieldSets(FieldSetsCommand),
    /// Durable platform jobs: progress, cancel, retry, and a worker.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Event deliveries (webhooks): their queues, pause and resume, on the
    /// whole platform or, with --tenant, for one tenant.
    Events {
        #[command(subcommand)]
        action: EventsCommand,
        /// One tenant's deliveries instead of the platform's.
        #[arg(long, global = true)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum EventsCommand {
    /// Paused or not, and what waits.
    Status,
    /// Stop delivering; events and deliveries keep accumulating.
    Pause,
    /// Deliver again, including everything that accumulated.
    Resume,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Register a platform operator.
    Create {
        email: String,
        /// 8 to 128 characters.
        #[arg(long, env = "STRATA_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// End every session of an operator at once, on every server.
    Revoke {
        email: String,
        /// Also disable the operator, so it cannot sign in again.
        #[arg(long)]
        disable: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SharedCommand {
    /// Apply pending shared migrations.
    Up,
    /// Revert the newest shared migrations.
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List shared migrations and whether each is applied.
    Status,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Selection {
    /// Every registered tenant.
    #[arg(long)]
    pub all: bool,
    /// This tenant (repeatable).
    #[arg(long = "tenant", value_name = "SLUG")]
    pub tenants: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Apply pending tenant migrations; each tenant in its own locked
    /// transaction, failures reported without stopping the others.
    Up {
        #[command(flatten)]
        selection: Selection,
        /// Tenants migrated at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Find pending migrations in each schema's own table instead of
        /// the shared record (one table opened per tenant: slower).
        #[arg(long)]
        verify: bool,
    },
    /// Applied and pending migrations of each tenant.
    Status {
        /// Only this tenant (repeatable); all when absent.
        #[arg(long = "tenant", value_name = "SLUG")]
        tenants: Vec<String>,
        /// Read each schema's own table instead of the shared record
        /// (one table opened per tenant: slower).
        #[arg(long)]
        verify: bool,
    },
    /// Spare schemas, migrated ahead of time so that creating a tenant
    /// takes one instead of migrating a new schema: make them until
    /// `--keep` are ready, or drop them all.
    Spares {
        /// How many to have ready.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        keep: u32,
        /// Drop every spare schema instead.
        #[arg(long, conflicts_with = "keep")]
        drop: bool,
        /// What the spares made are named once taken: `slug` (`t_<slug>`,
        /// a cost that grows with the number of tenants) or `own`
        /// (`tenant_<hex>`, the same cost at any size).
        #[arg(long, value_enum, default_value_t = SpareNaming::Slug, conflicts_with = "drop")]
        names: SpareNaming,
    },
}

/// What a taken spare schema is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpareNaming {
    /// `t_<slug>`, as every other tenant schema.
    Slug,
    /// The spare's own `tenant_<hex>`.
    Own,
}

impl From<SpareNaming> for tenancy::spares::SpareNames {
    fn from(n: SpareNaming) -> Self {
        match n {
            SpareNaming::Slug => Self::Slug,
            SpareNaming::Own => Self::Own,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant, create and migrate its schema, atomically.
    Create {
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// A custom domain (repeatable; the first is primary).
        #[arg(long = "domain", value_name = "HOST")]
        domains: Vec<String>,
        /// Create this first administrator with the tenant.
        #[arg(long, value_name = "EMAIL", requires = "admin_password")]
        admin_email: Option<String>,
        /// The administrator's password (8 to 128 characters).
        #[arg(long, env = "STRATA_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// The administrator's name (default: the e-mail address).
        #[arg(long)]
        admin_name: Option<String>,
        /// Provision from this template (its configuration, and records if
        /// it has them), in the same transaction.
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
    },
    /// Copy a tenant, within this database, as a new tenant: its users,
    /// roles, settings, records and history (not its sessions; its webhook
    /// endpoints inactive), atomically.
    Clone {
        /// The tenant to copy (at the current migration version).
        source: String,
        /// The new tenant's slug.
        slug: String,
        /// Display name (default: the source's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Write a tenant to a portable archive (a tar of its tables' rows in
    /// COPY format and a signed manifest), from one snapshot.
    Export {
        slug: String,
        /// Where to write it (`-` for standard output).
        #[arg(long, value_name = "PATH")]
        out: std::path::PathBuf,
    },
    /// Create a tenant from an archive, atomically: the archive is checked
    /// whole (signature, checksums, versions) first, an older one is
    /// migrated forward, one from a newer schema is refused.
    Import {
        /// The new tenant's slug.
        slug: String,
        #[arg(long = "from", value_name = "PATH")]
        from: std::path::PathBuf,
        /// Display name (default: the archive's).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
    /// Refuse a tenant's requests (403) until resumed.
    Suspend { slug: String },
    /// Serve a suspended tenant again.
    Resume { slug: String },
    /// Drop a tenant's schema and registry rows. Irreversible.
    Delete {
        slug: String,
        /// Repeat the slug to confirm.
        #[arg(long, value_name = "SLUG")]
        confirm: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FieldSetsCommand {
    /// List the platform field sets.
    List,
    /// Show one, with its definitions.
    Show { id: uuid::Uuid },
    /// Author a set from a JSON file: `{"model", "name", "label", "fields"}`.
    Create {
        #[arg(long, value_name = "PATH")]
        file: std::path::PathBuf,
    },
    /// Replace a set from a JSON file, if it is still at --version.
    Update {
        id: uuid::Uuid,
        #[arg(long)]
        version: i32,
        #[arg(long, value_name = "PATH")]
        file: std::path::PathBuf,
    },
    /// Delete a set (tenants keep their copies).
    Delete { id: uuid::Uuid },
    /// Distribute a set to tenants as a job, or with --dry-run report what
    /// each strategy would change in each tenant.
    Distribute {
        id: uuid::Uuid,
        #[command(flatten)]
        targets: Targets,
        /// skip, overwrite or merge.
        #[arg(long, default_value = "skip", required_unless_present = "dry_run")]
        strategy: String,
        /// Report what each strategy would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Items run at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=64))]
        concurrency: i32,
        /// Run the job here and wait for it, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct Targets {
    /// Every active or suspended tenant.
    #[arg(long, conflicts_with_all = ["tenants", "search", "status"])]
    pub all: bool,
    /// This tenant (repeatable).
    #[arg(long = "tenant", value_name = "SLUG")]
    pub tenants: Vec<String>,
    /// Tenants whose slug or name contains this text.
    #[arg(long)]
    pub search: Option<String>,
    /// Tenants of this status (active, suspended).
    #[arg(long)]
    pub status: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The latest jobs and their progress.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// One job's progress (done, failed, pending, rate, ETA), and its items.
    Show {
        id: uuid::Uuid,
        /// List every item, not only the failed ones.
        #[arg(long)]
        items: bool,
    },
    /// Stop a job: its pending items are not run.
    Cancel { id: uuid::Uuid },
    /// Run a job's failed and cancelled items again.
    Retry { id: uuid::Uuid },
    /// Run job items here (as every server does), until stopped or, with
    /// --until-idle, until none is ready.
    Work {
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        #[arg(long)]
        until_idle: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Capture a tenant's roles, sync permissions and row filters, journal
    /// retention, event types and field sets (with --records, its records
    /// too, as sample data) as a template.
    Capture {
        name: String,
        /// The tenant to capture.
        #[arg(long = "from", value_name = "SLUG")]
        from: String,
        #[arg(long)]
        records: bool,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List templates.
    List,
    /// Show one template: its source, version and rows per table.
    Show { name: String },
    /// Delete a template (tenants made from it are not touched).
    Delete { name: String },
}
