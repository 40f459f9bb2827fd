//! `field-sets` and `jobs`: platform field sets, their distribution, and
//! the durable jobs that carry it out.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use domain::custom::merge::Strategy;
use indicatif::{ProgressBar, ProgressStyle};
use platform::distribution::{self, Targets};
use platform::field_sets::{self, Draft};
use serde_json::json;
use tenancy::jobs::{self, Progress};
use tokio::sync::watch;
use uuid::Uuid;

use crate::cli::{FieldSetsCommand, JobsCommand, TemplateCommand};
use crate::commands::{CliError, Context};

impl From<platform::Error> for CliError {
    fn from(err: platform::Error) -> Self {
        use platform::Error as E;
        match err {
            E::Invalid(errors) => Self::Input(
                errors
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            E::NotFound(what) => Self::Input(format!("no such {what}")),
            E::Conflict(m) => Self::Input(m),
            E::Tenancy(e) => e.into(),
            E::Store(e) => Self::Input(e.to_string()),
            E::Database(e) => Self::Database(e),
        }
    }
}

fn read_draft(path: &std::path::Path) -> Result<Draft, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}

fn set_line(s: &field_sets::FieldSet) -> String {
    format!(
        "{}  {}/{}  v{}  {} field(s)  {}",
        s.id,
        s.model,
        s.name,
        s.version,
        s.fields.len(),
        s.label
    )
}

/// `field-sets …`.
pub async fn field_sets(ctx: &Context, cmd: &FieldSetsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        FieldSetsCommand::List => {
            let sets = field_sets::list(&ctx.db).await?;
            ctx.out.emit(&sets, || {
                sets.iter().map(set_line).collect::<Vec<_>>().join("\n")
            });
        }
        FieldSetsCommand::Show { id } => {
            let set = field_sets::get(&ctx.db, *id).await?;
            ctx.out.emit(&set, || {
                let mut text = set_line(&set);
                for d in &set.fields {
                    text.push_str(&format!(
                        "\n  {:<24} {:<16} {}{}",
                        d.key,
                        serde_json::to_value(d.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        d.label,
                        if d.required { " (required)" } else { "" }
                    ));
                }
                text
            });
        }
        FieldSetsCommand::Create { file } => {
            let set = field_sets::create(&ctx.db, &read_draft(file)?).await?;
            ctx.out.emit(&set, || format!("created {}", set_line(&set)));
        }
        FieldSetsCommand::Update { id, version, file } => {
            let set = field_sets::update(&ctx.db, *id, *version, &read_draft(file)?).await?;
            ctx.out.emit(&set, || format!("updated {}", set_line(&set)));
        }
        FieldSetsCommand::Delete { id } => {
            field_sets::delete(&ctx.db, *id).await?;
            ctx.out.emit(&json!({ "deleted": id }), || {
                format!("deleted field set {id}")
            });
        }
        FieldSetsCommand::Distribute {
            id,
            targets,
            strategy,
            dry_run,
            concurrency,
            wait,
        } => {
            let targets = Targets {
                all: targets.all,
                tenants: targets.tenants.clone(),
                search: targets.search.clone(),
                status: targets.status.clone(),
            };
            if *dry_run {
                return preview(ctx, *id, &targets).await;
            }
            let strategy = Strategy::parse(strategy).ok_or_else(|| {
                CliError::Input("--strategy must be skip, overwrite or merge".into())
            })?;
            let job = distribution::start(
                &ctx.registry,
                *id,
                &targets,
                strategy,
                *concurrency,
                "migrator",
            )
            .await?;
            if *wait {
                return follow(ctx, job, usize::try_from(*concurrency).unwrap_or(1)).await;
            }
            let p = jobs::progress(&ctx.db, job).await?;
            ctx.out.emit(&p, || {
                format!(
                    "started job {job}: {}\nfollow it with `migrator jobs show {job}`",
                    p.summary
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn preview(ctx: &Context, id: Uuid, targets: &Targets) -> Result<ExitCode, CliError> {
    let plans = distribution::dry_run(&ctx.registry, id, targets).await?;
    ctx.out.emit(&plans, || {
        let mut lines = vec![format!(
            "{:<24} {:<40} {:<40} {}",
            "tenant", "skip", "overwrite", "merge"
        )];
        for p in &plans {
            let cell = |s: &str| match p.strategies.get(s) {
                Some(w) => match (&w.outcome, &w.error) {
                    (Some(o), _) => {
                        let mut parts = vec![o.action.clone()];
                        for (what, keys) in [
                            ("+", &o.added),
                            ("~", &o.changed),
                            ("-", &o.removed),
                            ("retired ", &o.retired),
                        ] {
                            if !keys.is_empty() {
                                parts.push(format!("{what}{}", keys.join(",")));
                            }
                        }
                        if !o.conflicts.is_empty() {
                            parts.push(format!("{} conflict(s)", o.conflicts.len()));
                        }
                        parts.join(" ")
                    }
                    (None, Some(e)) => format!("FAILS: {e}"),
                    (None, None) => String::new(),
                },
                None => String::new(),
            };
            lines.push(format!(
                "{:<24} {:<40} {:<40} {}",
                p.tenant,
                cell("skip"),
                cell("overwrite"),
                cell("merge")
            ));
        }
        lines.join("\n")
    });
    Ok(ExitCode::SUCCESS)
}

fn progress_line(p: &Progress) -> String {
    format!(
        "{}  {}  {}: {} done, {} failed, {} pending, {} cancelled of {} ({:.0}%){}{}",
        p.id,
        p.status,
        p.summary,
        p.done,
        p.failed,
        p.pending,
        p.cancelled,
        p.total,
        p.percent,
        if p.rate > 0.0 {
            format!(", {:.1} tenants/s", p.rate)
        } else {
            String::new()
        },
        p.eta_seconds
            .map(|e| format!(", about {e:.0} s left"))
            .unwrap_or_default()
    )
}

/// Runs `workers` workers here until job `id` is no longer running,
/// showing its progress; exit 1 if any item failed.
async fn follow(ctx: &Context, id: Uuid, workers: usize) -> Result<ExitCode, CliError> {
    let (stop_tx, stop) = watch::channel(false);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(platform::worker::run(
                ctx.registry.clone(),
                None,
                stop.clone(),
                Duration::from_millis(200),
            ))
        })
        .collect();
    let bar = (!ctx.out.json && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} tenants ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let last = loop {
        let p = jobs::progress(&ctx.db, id).await?;
        if let Some(bar) = &bar {
            bar.set_length(u64::try_from(p.total).unwrap_or(0));
            bar.set_position(u64::try_from(p.done + p.failed).unwrap_or(0));
            bar.set_message(format!("{} failed", p.failed));
        }
        if p.status != "running" {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let failed = jobs::items(&ctx.db, id, Some("failed")).await?;
    ctx.out.emit(&json!({ "job": last, "failed": failed }), || {
        let mut text = progress_line(&last);
        for i in &failed {
            text.push_str(&format!(
                "\n  FAILED {}: {}",
                i.tenant,
                i.error.as_deref().unwrap_or("")
            ));
        }
        text
    });
    Ok(if last.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `jobs …`.
pub async fn jobs_command(ctx: &Context, cmd: &JobsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        JobsCommand::List { limit } => {
            let list = jobs::list(&ctx.db, *limit).await?;
            ctx.out.emit(&list, || {
                list.iter()
                    .map(progress_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        JobsCommand::Show { id, items } => {
            let p = jobs::progress(&ctx.db, *id).await?;
            let shown = jobs::items(&ctx.db, *id, (!*items).then_some("failed")).await?;
            ctx.out.emit(&json!({ "job": p, "items": shown }), || {
                let mut text = progress_line(&p);
                for i in &shown {
                    text.push_str(&format!(
                        "\n  {:<9} {:<24} attempts {}{}{}",
                        i.status,
                        i.tenant,
                        i.attempts,
                        i.error
                            .as_deref()
                            .map(|e| format!("  {e}"))
                            .unwrap_or_default(),
                        i.result
                            .as_ref()
                            .and_then(|r| r.get("action"))
                            .and_then(|a| a.as_str())
                            .map(|a| format!("  {a}"))
                            .unwrap_or_default()
                    ));
                }
                text
            });
        }
        JobsCommand::Cancel { id } => {
            let p = jobs::cancel(&ctx.db, *id).await?;
            ctx.out.emit(&p, || progress_line(&p));
        }
        JobsCommand::Retry { id } => {
            let p = jobs::retry(&ctx.db, *id).await?;
            ctx.out.emit(&p, || progress_line(&p));
        }
        JobsCommand::Work {
            workers,
            until_idle,
        } => {
            if *until_idle {
                let runs = (0..*workers).map(|_| async {
                    let mut n = 0u64;
                    while platform::worker::run_one(&ctx.registry).await? {
                        n += 1;
                    }
                    Ok::<u64, tenancy::Error>(n)
                });
                let mut total = 0;
                for r in futures::future::join_all(runs).await {
                    total += r?;
                }
                ctx.out.emit(&json!({ "items": total }), || {
                    format!("ran {total} item(s)")
                });
            } else {
                let (stop_tx, stop) = watch::channel(false);
                let handles: Vec<_> = (0..*workers)
                    .map(|_| {
                        tokio::spawn(platform::worker::run(
                            ctx.registry.clone(),
                            None,
                            stop.clone(),
                            Duration::from_millis(500),
                        ))
                    })
                    .collect();
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop_tx.send(true);
                for h in handles {
                    let _ = h.await;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn template_line(t: &tenancy::templates::Template) -> String {
    format!(
        "{:<24} from {:<20} {}{}  {}",
        t.name,
        t.source,
        t.tables
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        if t.include_records {
            " (with records)"
        } else {
            ""
        },
        t.description
    )
}

/// `template …`.
pub async fn template(ctx: &Context, cmd: &TemplateCommand) -> Result<ExitCode, CliError> {
    use tenancy::templates;
    match cmd {
        TemplateCommand::Capture {
            name,
            from,
            records,
            description,
        } => {
            let slug = tenancy::error::parse_slug(from)?;
            let t = ctx
                .registry
                .capture_template(name, description, &slug, *records, "migrator")
                .await?;
            ctx.out
                .emit(&t, || format!("captured {}", template_line(&t)));
        }
        TemplateCommand::List => {
            let list = templates::list(&ctx.db).await?;
            ctx.out.emit(&list, || {
                list.iter()
                    .map(template_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TemplateCommand::Show { name } => {
            let t = templates::get(&ctx.db, name).await?;
            ctx.out.emit(&t, || template_line(&t));
        }
        TemplateCommand::Delete { name } => {
            templates::delete(&ctx.db, name).await?;
            ctx.out.emit(&json!({ "deleted": name }), || {
                format!("deleted template {name}")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
