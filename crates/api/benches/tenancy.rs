//! Tenancy benchmark: provisioning latency (migrated on the spot, and
//! from spare schemas) at the first, middle and last of `BENCH_TENANTS`
//! tenants, `migrator tenants up --all` over all of them (all current, then
//! one migration pending), the catalog's size per tenant, requests/s of
//! the tenant-scoped stats endpoint spread over 1, 10, 1,000 and every
//! tenant with the PostgreSQL backends' private memory after each, and
//! `pgbench -S` on the same server as the machine's reference.
//!
//! Run with `just bench-tenancy` (1,000 tenants) or `just
//! bench-tenancy-10k` (10,000); both build the release migrator first and
//! pass its path in `MIGRATOR_BIN`. Uses the servers named by
//! `STRATA_TEST_DATABASE_URL` / `STRATA_TEST_REDIS_URL` and a database of
//! its own, dropped at the end. `BENCH_TENANTS` (default 1000) and
//! `BENCH_SECONDS` (default 10) scale it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use api::startup::Application;
use common::{Req, env_or, load, quantile};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::migrate::{rollback_tenant, tenant_migrations};
use tenancy::spares::SpareNames;
use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug};

/// Tenants created one at a time for each provisioning sample.
const SAMPLE: usize = 20;

async fn provision(db: &TestDb, slug: &str) -> f64 {
    let new =
        NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost").expect("tenant");
    let started = Instant::now();
    db.registry().create(&new).await.expect("create");
    started.elapsed().as_secs_f64() * 1000.0
}

/// p50 and p95 of provisioning `SAMPLE` tenants one at a time, named
/// `<prefix>-<i>`.
async fn sample(db: &TestDb, prefix: &str) -> (f64, f64) {
    let mut times = Vec::with_capacity(SAMPLE);
    for i in 0..SAMPLE {
        times.push(provision(db, &format!("{prefix}-{i:02}")).await);
    }
    times.sort_by(f64::total_cmp);
    (quantile(&times, 0.5), quantile(&times, 0.95))
}

/// Creates tenants `bench-<from>` .. `bench-<to - 1>`, four at a time,
/// printing the rate at every thousandth.
async fn fill(db: &TestDb, from: usize, to: usize) {
    if to <= from {
        return;
    }
    let started = Instant::now();
    let mut lap = (from, Instant::now());
    let mut runs = futures::stream::iter(from..to)
        .map(|i| async move { provision(db, &format!("bench-{i:05}")).await })
        .buffer_unordered(4);
    let mut made = from;
    while runs.next().await.is_some() {
        made += 1;
        if made.is_multiple_of(1000) {
            let rate = (made - lap.0) as f64 / lap.1.elapsed().as_secs_f64();
            println!("  {made} tenants ({rate:.1} tenants/s since #{})", lap.0);
            lap = (made, Instant::now());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  provisioned {} tenants, 4 at a time, in {secs:.1} s ({:.1} tenants/s)",
        to - from,
        (to - from) as f64 / secs
    );
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index(0)
        .expect("number")
}

/// Private (anonymous) memory of the server's PostgreSQL backends (by
/// their `application_name`; not the benchmark's own), in MiB: (mean,
/// max). Read from /proc (same machine).
async fn backend_memory(db: &TestDb) -> (f64, f64) {
    let rows = db
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_type = 'client backend' AND application_name IN ('{}', '{}')",
                tenancy::db::WRITE_CONNECTIONS,
                tenancy::db::READ_CONNECTIONS
            ),
        ))
        .await
        .expect("backends");
    let mibs: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<i32>(0).ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .collect();
    if mibs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let max = mibs.iter().copied().fold(0.0, f64::max);
    (mibs.iter().sum::<f64>() / mibs.len() as f64, max)
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

#[tokio::main]
async fn main() {
    let tenants: usize = env_or::<usize>("BENCH_TENANTS", 1000).max(4 * SAMPLE);
    let secs: u64 = env_or("BENCH_SECONDS", 10);
    let db = TestDb::new(16).await;
    let set = tenant_migrations();
    println!("== tenancy benchmark ({tenants} tenants, {secs} s load runs) ==");

    // 1. Provisioning at the first, middle and last tenant: each sample
    //    migrated on the spot, then from spare schemas made just before.
    let mut made = 0;
    for (at, name) in [(1, "first"), (tenants / 2, "middle"), (tenants, "last")] {
        let upto = at.saturating_sub(1).max(made);
        fill(&db, made, upto).await;
        made = upto;
        let (p50, p95) = sample(&db, &format!("spot-{at}")).await;
        db.registry()
            .fill_spares(SAMPLE, &set, SpareNames::Slug)
            .await
            .expect("spares");
        let (s50, s95) = sample(&db, &format!("spare-{at}")).await;
        db.registry()
            .fill_spares(SAMPLE, &set, SpareNames::Own)
            .await
            .expect("spares");
        let (o50, o95) = sample(&db, &format!("own-{at}")).await;
        made += 3 * SAMPLE;
        println!(
            "provisioning at the {name} tenant (#{at}): migrated on the spot p50 {p50:.1} ms, p95 {p95:.1} ms; \
             from a spare renamed after the slug p50 {s50:.1} ms, p95 {s95:.1} ms; \
             from a spare keeping its name p50 {o50:.1} ms, p95 {o95:.1} ms"
        );
    }
    let count = db.registry().list().await.expect("list").len();
    common::settle(&db).await;

    // 2. The catalog.
    let relations = scalar(&db, "SELECT count(*) FROM pg_class").await;
    let bytes = scalar(&db, "SELECT pg_database_size(current_database())").await;
    println!(
        "catalog with {count} tenants: {relations} pg_class rows ({:.0} per tenant), database {:.0} MiB ({:.0} kB per tenant)",
        relations as f64 / count as f64,
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / count as f64
    );

    // 3. The migrator over every tenant.
    match std::env::var("MIGRATOR_BIN") {
        Ok(bin) => {
            let (s, summary) = migrator_up(&bin, &db, 4);
            println!("migrator tenants up --all, {count} up to date: {s:.2} s ({summary})");
            let registry = db.registry();
            let all = registry.list().await.expect("list");
            futures::stream::iter(&all)
                .map(|t| rollback_tenant(registry.ddl(), t, &set, 1))
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await;
            let (s, summary) = migrator_up(&bin, &db, 4);
            println!(
                "migrator tenants up --all --concurrency 4, {count} with one migration pending: {s:.2} s ({summary})"
            );
        }
        Err(_) => {
            println!("MIGRATOR_BIN not set: skipping the migrator runs (use `just bench-tenancy`)")
        }
    }

    // 4. The tenant-scoped endpoint under load, spread ever wider.
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
    let mut hosts: Vec<(String, String)> = Vec::new();
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
        hosts.push((format!("{}.localhost", t.slug()), token));
    }
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
    let mut spreads = vec![1, 10, 1000, hosts.len()];
    spreads.retain(|n| *n <= hosts.len());
    spreads.dedup();
    let mut one = f64::NAN;
    for n in spreads {
        let some: Vec<(String, String)> = hosts[..n].to_vec();
        // A first pass prepares each tenant's statement on the connections
        // and loads its catalog entries into the backends, as a
        // long-running server's would be; shown, not compared.
        let cold = load(&address, 16, secs, stats(some.clone())).await;
        let s = load(&address, 16, secs, stats(some)).await;
        if n == 1 {
            one = s.rps;
        }
        let (mean, max) = backend_memory(&db).await;
        println!(
            "GET {path}, 16 connections, {n} tenants: {s} ({:.0} % of one tenant; first pass {:.0} req/s); backends' private memory mean {mean:.1} MiB, max {max:.1} MiB",
            100.0 * s.rps / one,
            cold.rps
        );
    }
    common::print_pgbench_reference(&db.url, secs);
}
