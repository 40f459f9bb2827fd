//! How results are shown: a progress bar on a terminal, plain lines
//! otherwise, one JSON document with `--json`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tenancy::migrate::TenantOutcome;

/// Writes `text` and a newline to standard output. A reader that has
/// gone (`migrator … | head`, `grep -q`) is not an error of ours: the
/// rest is dropped instead of a panic.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON (in `--json` mode) or `text` otherwise.
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => say(&s),
                Err(e) => eprintln!("migrator: cannot encode output: {e}"),
            }
        } else {
            let text = text();
            if !text.is_empty() {
                say(&text);
            }
        }
    }

    /// Progress of a run over `total` tenants.
    pub fn progress(&self, total: usize) -> Progress {
        let bar = (!self.json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} tenants ({per_sec}, eta {eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            plain: !self.json,
        }
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
}

impl Progress {
    pub fn tenant_done(&self, outcome: &TenantOutcome) {
        let line = match outcome {
            TenantOutcome::UpToDate { .. } => None,
            TenantOutcome::Migrated { slug, applied } => {
                Some(format!("migrated  {slug}: {}", applied.join(", ")))
            }
            TenantOutcome::Failed { slug, error } => Some(format!("FAILED    {slug}: {error}")),
        };
        match (&self.bar, line) {
            (Some(bar), Some(line)) => {
                bar.println(line);
                bar.inc(1);
            }
            (Some(bar), None) => bar.inc(1),
            (None, Some(line)) if self.plain => say(&line),
            _ => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
