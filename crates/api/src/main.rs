//! `strata-server`: serves the Strata API.

use std::process::ExitCode;

use api::configuration::Settings;
use api::startup::Application;

/// mimalloc returns freed memory to the system; glibc's malloc kept the
/// 19 MiB of each password check in per-thread arenas (736 MiB after 100
/// concurrent sign-ins). Built without transparent huge pages: with them
/// every page mimalloc took back from the system was faulted in and zeroed
/// 2 MiB at a time (a third of the server's CPU in a push benchmark) and
/// resident memory grew in 2 MiB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("strata-server: {err}");
            return ExitCode::from(2);
        }
    };
    api::telemetry::init(&settings.log);
    let app = match Application::build(&settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            eprintln!("strata-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        port = app.port(),
        base_domain = %settings.tenancy.base_domain,
        "strata-server listening"
    );
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server stopped with an error");
            ExitCode::FAILURE
        }
    }
}
