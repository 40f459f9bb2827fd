//! Platform benchmark: cloning a tenant of `BENCH_CLIENTS` (default
//! 100,000) clients within the database, beside `pg_dump -n <schema> |
//! psql` of the same schema into another database in the same run.
//!
//! `just bench-platform` runs it.

mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

use common::env_or;
use sea_orm::ConnectionTrait;
use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug, TenantTx};

#[tokio::main]
async fn main() {
    let n: usize = env_or("BENCH_CLIENTS", 100_000);
    let db = TestDb::new(4).await;
    let registry = db.registry();
    let new = |slug: &str| {
        NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost").expect("tenant")
    };
    let tenant = registry.create(&new("acme")).await.expect("create");
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    tx.conn()
        .execute_unprepared(&format!(
            "INSERT INTO clients (id, name, status, email, city, country, department) \
             SELECT gen_random_uuid(), 'Client ' || g, 'active', 'c' || g || '@example.com', \
                    'Lisbon', 'PT', 'Sales' FROM generate_series(1, {n}) g"
        ))
        .await
        .expect("clients");
    tx.commit().await.expect("commit");
    db.db
        .execute_unprepared("VACUUM ANALYZE")
        .await
        .expect("vacuum");
    println!("== platform benchmark ({n} clients, with their journal and sync tracking) ==");

    let started = Instant::now();
    let cloned = registry
        .clone_tenant(tenant.slug(), &new("acme-copy"))
        .await
        .expect("clone");
    let secs = started.elapsed().as_secs_f64();
    let rows: u64 = cloned.tables.values().sum();
    println!(
        "clone within the database: {secs:.2} s ({rows} rows in {} tables, {:.0} rows/s)",
        cloned.tables.len(),
        rows as f64 / secs
    );

    // The reference: pg_dump of the schema piped into psql on a fresh database.
    let target = TestDb::new(1).await;
    let started = Instant::now();
    let mut dump = Command::new("pg_dump")
        .args(["--no-owner", "-n", tenant.schema().as_str(), &db.url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_dump (PostgreSQL's client tools)");
    let restore = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=0", &target.url])
        .stdin(dump.stdout.take().expect("pipe"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("psql");
    let dumped = dump.wait().expect("pg_dump");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reference, pg_dump -n {} | psql into another database: {secs:.2} s ({})",
        tenant.schema().as_str(),
        if dumped.success() && restore.success() {
            "ok"
        } else {
            "with errors"
        }
    );
}
