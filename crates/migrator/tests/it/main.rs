//! Tests of the `migrator` binary against real PostgreSQL and Redis.

mod archive;
mod cli;
mod distribution;
mod templates;
mod tenants_up;

use std::process::Output;

use tenancy::testing::TestDb;

/// Runs the migrator binary on `db` with `args`.
pub async fn migrator(db: &TestDb, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_migrator"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("STRATA__REDIS__URL", &db.redis.url)
        .env("STRATA__REDIS__PREFIX", &db.redis.prefix)
        .env_remove("STRATA_CONFIG")
        .output()
        .await
        .expect("run migrator")
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
