//! Tenancy benchmark: provisioning latency, `migrator tenants up` over 1,000
//! tenants (all current, then one migration pending), and requests/s of the
//! tenant-scoped endpoint beside `pgbench -S` on the same server.
//!
//! Run with `just bench-tenancy`, which builds the release migrator first
//! and passes its path in `MIGRATOR_BIN`. Uses the servers named by
//! `STRATA_TEST_DATABASE_URL` / `STRATA_TEST_REDIS_URL` and a database of
//! its own, dropped at the end. `BENCH_TENANTS` (default 1000) and
//! `BENCH_SECONDS` (default 10) scale it down for a quick look.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use api::startup::Application;
use common::{Req, env_or, load, quantile};
use futures::StreamExt;
use tenancy::migrate::{rollback_tenant, tenant_migrations};
use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug};

async fn provision(db: &TestDb, slug: &str) -> f64 {
    let new =
        NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost").expect("tenant");
    let started = Instant::now();
    db.registry().create(&new).await.expect("create");
    started.elapsed().as_secs_f64() * 1000.0
}

/// Runs the migrator binary's `tenants up --all`; seconds and its summary.
fn migrator_up(bin: &str, db: &TestDb, concurrency: u32) -> (f64, serde_json::Value) {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["tenants", "up", "--all", "--json", "--concurrency"])
        .arg(concurrency.to_string())
        .env("DATABASE_URL", &db.url)
        .env("STRATA__REDIS__URL", &db.redis.url)
        .env("STRATA__REDIS__PREFIX", &db.redis.prefix)
        .output()
        .expect("run migrator");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    (secs, report["summary"].clone())
}

/// `pgbench -S -c 16` on a scratch database of the same server: TPS.
fn pgbench(db: &TestDb, secs: u64) -> Option<f64> {
    let url = db.url.clone();
    Command::new("pgbench").arg("--version").output().ok()?;
    let init = Command::new("pgbench")
        .args(["-i", "-s", "10", "-q", &url])
        .output()
        .ok()?;
    if !init.status.success() {
        return None;
    }
    let out = Command::new("pgbench")
        .args(["-S", "-c", "16", "-j", "2", "-T", &secs.to_string(), &url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() {
    let tenants: usize = env_or("BENCH_TENANTS", 1000);
    let secs: u64 = env_or("BENCH_SECONDS", 10);
    let db = TestDb::new(16).await;
    println!("== tenancy benchmark ({tenants} tenants, {secs} s load runs) ==");

    // 1. Provisioning: 50 tenants, one at a time.
    let mut times: Vec<f64> = Vec::new();
    for i in 0..50 {
        times.push(provision(&db, &format!("prov-{i:03}")).await);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "provisioning (50 tenants): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        quantile(&times, 0.5),
        quantile(&times, 0.95),
        times.last().copied().unwrap_or(f64::NAN)
    );

    // Fill up to `tenants`, four at a time.
    let started = Instant::now();
    futures::stream::iter(50..tenants)
        .map(|i| {
            let db = &db;
            async move { provision(db, &format!("bench-{i:04}")).await }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    println!(
        "provisioned {} more tenants, 4 at a time, in {:.1} s",
        tenants.saturating_sub(50),
        started.elapsed().as_secs_f64()
    );

    // 2. The migrator over every tenant.
    match std::env::var("MIGRATOR_BIN") {
        Ok(bin) => {
            let (s, summary) = migrator_up(&bin, &db, 4);
            println!("migrator tenants up --all, {tenants} up to date: {s:.2} s ({summary})");
            let set = tenant_migrations();
            let all = db.registry().list().await.expect("list");
            futures::stream::iter(&all)
                .map(|t| rollback_tenant(&db.db, t, &set, 1))
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await;
            for concurrency in [2, 4] {
                let (s, summary) = migrator_up(&bin, &db, concurrency);
                println!(
                    "migrator tenants up --all --concurrency {concurrency}, {tenants} with one migration pending: {s:.2} s ({summary})"
                );
                if concurrency == 2 {
                    futures::stream::iter(&all)
                        .map(|t| rollback_tenant(&db.db, t, &set, 1))
                        .buffer_unordered(8)
                        .collect::<Vec<_>>()
                        .await;
                }
            }
        }
        Err(_) => {
            println!("MIGRATOR_BIN not set: skipping the migrator runs (use `just bench-tenancy`)")
        }
    }

    // 3. The tenant-scoped endpoint under load.
    let mut settings: api::configuration::Settings =
        tenancy::config::load().expect("configuration");
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.database.url.clone_from(&db.url);
    settings.database.pool_size = 16;
    settings.limits.user_per_minute = 100_000_000;
    settings.limits.user_burst = 1_000_000;
    settings.limits.tenant_per_minute = 100_000_000;
    settings.limits.tenant_burst = 1_000_000;
    settings.redis = db.redis.clone();
    settings.tenancy.base_domain = "localhost".into();
    let app = Application::build(&settings).await.expect("app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let resolver = app.resolver();
    tokio::spawn(app.run_until_stopped());
    while !resolver.is_listening() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Each tenant's host with an administrator's token (the route needs one).
    let keys = api::auth::TokenKeys::new(&settings.auth.jwt_secret, 3600, 3600);
    let mut many: Vec<(String, String)> = Vec::new();
    for t in db.registry().list().await.expect("list") {
        let token = keys
            .issue(
                db.administrator(&t).await,
                t.id(),
                uuid::Uuid::now_v7(),
                1,
                vec!["Administrators".into()],
            )
            .expect("token");
        many.push((format!("{}.localhost", t.slug()), token));
    }
    let one: Vec<(String, String)> = many
        .iter()
        .filter(|(h, _)| h == "prov-000.localhost")
        .cloned()
        .collect();
    let stats = |hosts: Vec<(String, String)>| {
        move |n: usize| Req {
            method: reqwest::Method::GET,
            host: hosts[n % hosts.len()].0.clone(),
            path: "/api/v1/tenant/stats".into(),
            token: Some(hosts[n % hosts.len()].1.clone()),
            body: None,
        }
    };
    let path = "/api/v1/tenant/stats";
    load(&address, 16, 2, stats(one.clone())).await; // warm-up
    let s = load(&address, 16, secs, stats(one)).await;
    println!("GET {path}, 16 connections, one tenant: {s}");
    // Each PostgreSQL backend loads a tenant's table descriptors the first
    // time it meets that tenant; the first pass pays for that, the second
    // shows a long-running server.
    for pass in ["first pass, cold catalog caches", "second pass, warm"] {
        let s = load(&address, 16, secs, stats(many.clone())).await;
        println!(
            "GET {path}, 16 connections, {} tenants ({pass}): {s}",
            many.len()
        );
    }
    match pgbench(&db, secs) {
        Some(tps) => println!("pgbench -S -c 16 -j 2 on the same server: {tps:.0} TPS"),
        None => println!("pgbench not available: no ceiling measured"),
    }
}
