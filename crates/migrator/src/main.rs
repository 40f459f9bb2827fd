//! `migrator`: applies shared and per-tenant migrations and manages the
//! tenant lifecycle, for operators and CI pipelines.

mod cli;
mod commands;
mod jobs;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("migrator: {err}");
            err.exit_code()
        }
    }
}
