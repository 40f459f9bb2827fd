//! Platform benchmark: cloning a tenant of `BENCH_CLIENTS` (default
//! 100,000) clients within the database, beside `pg_dump -n <schema> |
//! psql` of the same schema into another database in the same run; then
//! exporting that tenant to an archive and importing it as another; then
//! distributing a field set to `BENCH_TENANTS` (default 1,000) tenants as
//! a job run by 4 workers (install, then a merge of the next version, and
//! the dry run), beside the floor: one INSERT into each tenant's
//! `field_sets`, each in its own transaction.
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
    let db = TestDb::new(12).await;
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
    archive(&db, &tenant).await;
    distribution(&db).await;
}

async fn archive(db: &TestDb, tenant: &tenancy::Tenant) {
    let registry = db.registry();
    let key = tenancy::archive::ArchiveKey::new("a-benchmark-archive-secret-0123456789");
    let path = std::env::temp_dir().join(format!("strata-bench-{}.tar", std::process::id()));
    let started = Instant::now();
    let file = std::fs::File::create(&path).expect("archive file");
    let exported = registry
        .export_tenant(tenant.slug(), &key, std::io::BufWriter::new(file))
        .await
        .expect("export");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "export to an archive: {secs:.2} s ({} rows, {:.0} rows/s, {:.1} MiB)",
        exported.rows,
        exported.rows as f64 / secs,
        exported.bytes as f64 / 1_048_576.0
    );
    let started = Instant::now();
    let file = std::fs::File::open(&path).expect("archive file");
    let new = NewTenant::new(
        Slug::parse("acme-imported").expect("slug"),
        "Imported",
        &[],
        "localhost",
    )
    .expect("tenant");
    let imported = registry
        .import_tenant(&new, &key, std::io::BufReader::new(file))
        .await
        .expect("import");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "import from the archive (checked, staged with COPY, one transaction): {secs:.2} s \
         ({} rows, {:.0} rows/s)",
        imported.rows,
        imported.rows as f64 / secs
    );
    let _ = std::fs::remove_file(&path);
}

async fn distribution(db: &TestDb) {
    use domain::custom::merge::Strategy;
    use futures::StreamExt;
    use platform::distribution::{self, Targets};
    use platform::field_sets;

    let n: usize = env_or("BENCH_TENANTS", 1_000);
    let registry = db.registry();
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(8, |i| {
            let registry = registry.clone();
            async move {
                let slug = format!("org-{i:05}");
                registry
                    .create(
                        &NewTenant::new(Slug::parse(&slug).expect("slug"), &slug, &[], "localhost")
                            .expect("tenant"),
                    )
                    .await
                    .expect("create");
            }
        })
        .await;
    println!(
        "\n== distribution to {n} tenants ==\nprovisioned {n} tenants in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let fields = |extra: bool| {
        let mut f = serde_json::json!([
            {"key": "sector", "label": "Sector", "type": "single_choice",
             "options": ["energy", "retail", "transport"], "required": true, "default": "energy"},
            {"key": "scope1", "label": "Scope 1 (tCO2e)", "type": "number"},
            {"key": "scope2", "label": "Scope 2 (tCO2e)", "type": "number"},
            {"key": "audited", "label": "Audited", "type": "boolean"},
            {"key": "reported", "label": "Reported on", "type": "date"}
        ]);
        if extra {
            f[0]["label"] = "Industry sector".into();
            f.as_array_mut()
                .expect("array")
                .push(serde_json::json!({"key": "scope3", "label": "Scope 3", "type": "number"}));
        }
        f
    };
    let draft = |extra| field_sets::Draft {
        model: "clients".into(),
        name: "esg".into(),
        label: "ESG".into(),
        fields: fields(extra),
    };
    let set = field_sets::create(&db.db, &draft(false))
        .await
        .expect("set");
    let all = Targets {
        all: true,
        ..Targets::default()
    };
    let run = |strategy: Strategy, set: uuid::Uuid| {
        let registry = registry.clone();
        let all = all.clone();
        async move {
            let started = Instant::now();
            let job = distribution::start(&registry, set, &all, strategy, 8, "bench")
                .await
                .expect("start");
            let workers = (0..4).map(|_| async {
                while platform::worker::run_one(&registry).await.expect("worker") {}
            });
            futures::future::join_all(workers).await;
            let secs = started.elapsed().as_secs_f64();
            let p = tenancy::jobs::progress(registry.db(), job)
                .await
                .expect("progress");
            assert_eq!((p.done, p.failed), (p.total, 0), "{p:?}");
            println!(
                "distribute ({}) to {} tenants: {secs:.2} s, {:.0} tenants/s",
                strategy.as_str(),
                p.total,
                p.total as f64 / secs
            );
        }
    };
    run(Strategy::Skip, set.id).await;
    let set = field_sets::update(&db.db, set.id, 1, &draft(true))
        .await
        .expect("v2");
    let started = Instant::now();
    let previews = distribution::dry_run(&registry, set.id, &all)
        .await
        .expect("dry run");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "dry run (every strategy) over {} tenants: {secs:.2} s, {:.0} tenants/s",
        previews.len(),
        previews.len() as f64 / secs
    );
    run(Strategy::Merge, set.id).await;

    // The floor: one INSERT per tenant schema, each its own transaction.
    let tenants = registry.list().await.expect("list");
    let started = Instant::now();
    futures::stream::iter(tenants.iter())
        .for_each_concurrent(4, |t| async move {
            let tx = TenantTx::begin(&db.db, t).await.expect("tx");
            tx.conn()
                .execute_unprepared(
                    "INSERT INTO field_sets (id, model, name, label, fields) \
                     VALUES (gen_random_uuid(), 'clients', 'floor', 'Floor', '[]')",
                )
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
        })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reference, one INSERT per tenant schema (4 at once): {secs:.2} s, {:.0} tenants/s",
        tenants.len() as f64 / secs
    );
}
