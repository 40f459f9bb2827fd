//! Distributing a platform field set to 200 tenants with each strategy,
//! the dry run against the real run, a merge with tenant edits, platform
//! edits and conflicts, and a job whose worker is killed (SIGKILL) ten
//! times: every item lands exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::custom::merge::Strategy;
use domain::custom::parse_definitions;
use domain::custom::sets::{self, Draft};
use futures::StreamExt;
use platform::distribution::{self, Preview, Targets};
use platform::field_sets;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tenancy::TenantTx;
use tenancy::jobs;
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::migrator;

const TENANTS: usize = 200;
/// Tenants that edit their copy locally before the platform's next version.
const EDITORS: usize = 50;

fn slug(i: usize) -> String {
    format!("org-{i:03}")
}

fn v1() -> Value {
    json!([
        {"key": "sector", "label": "Sector", "type": "single_choice",
         "options": ["energy", "retail"], "required": true, "default": "energy"},
        {"key": "scope1", "label": "Scope 1 emissions", "type": "number"},
        {"key": "audited", "label": "Audited", "type": "boolean"}
    ])
}

/// The platform's next version: relabels `scope1` and `sector`, adds an
/// option to `sector`, drops `audited`, adds `reported`.
fn v2() -> Value {
    json!([
        {"key": "sector", "label": "Industry sector", "type": "single_choice",
         "options": ["energy", "retail", "transport"], "required": true, "default": "energy"},
        {"key": "scope1", "label": "Scope 1 (tCO2e)", "type": "number"},
        {"key": "reported", "label": "Reported on", "type": "date"}
    ])
}

fn draft(fields: Value) -> field_sets::Draft {
    field_sets::Draft {
        model: "clients".into(),
        name: "esg".into(),
        label: "ESG".into(),
        fields,
    }
}

async fn create_tenants(db: &TestDb, n: usize) {
    futures::stream::iter(0..n)
        .for_each_concurrent(4, |i| async move {
            db.create_tenant(&slug(i)).await;
        })
        .await;
}

/// Runs every ready job item here, with `workers` workers.
async fn work(registry: &tenancy::Registry, workers: usize) {
    let runs = (0..workers)
        .map(|_| async { while platform::worker::run_one(registry).await.expect("worker") {} });
    futures::future::join_all(runs).await;
}

async fn run_job(db: &TestDb, set: Uuid, strategy: Strategy) -> (Uuid, BTreeMap<String, Value>) {
    let registry = db.registry();
    let job = distribution::start(
        &registry,
        set,
        &Targets {
            all: true,
            ..Targets::default()
        },
        strategy,
        8,
        "test",
    )
    .await
    .expect("start");
    work(&registry, 4).await;
    let p = jobs::progress(&db.db, job).await.expect("progress");
    assert_eq!(
        (p.status.as_str(), p.done, p.failed, p.pending),
        ("finished", TENANTS as i64, 0, 0),
        "{p:?}"
    );
    let items = jobs::items(&db.db, job, None).await.expect("items");
    let results = items
        .into_iter()
        .map(|i| (i.tenant, i.result.expect("result")))
        .collect();
    (job, results)
}

/// The dry run's outcome of `strategy` per tenant, as a job item's result.
fn previewed(previews: &[Preview], strategy: &str) -> BTreeMap<String, Value> {
    previews
        .iter()
        .map(|p| {
            let would = &p.strategies[strategy];
            assert!(would.error.is_none(), "{}: {:?}", p.tenant, would.error);
            (
                p.tenant.clone(),
                serde_json::to_value(would.outcome.as_ref().expect("outcome")).expect("json"),
            )
        })
        .collect()
}

async fn tenant_set(db: &TestDb, i: usize) -> sets::FieldSet {
    let tenant = db
        .registry()
        .get(&tenancy::Slug::parse(&slug(i)).expect("slug"))
        .await
        .expect("tenant");
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    let set = sets::list(tx.conn(), Some("clients"))
        .await
        .expect("sets")
        .into_iter()
        .find(|s| s.name == "esg")
        .expect("esg");
    tx.commit().await.expect("commit");
    set
}

#[tokio::test]
async fn every_strategy_over_200_tenants_as_the_dry_run_said() {
    let db = TestDb::new(8).await;
    let started = Instant::now();
    create_tenants(&db, TENANTS).await;
    eprintln!(
        "{TENANTS} tenants in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let registry = db.registry();
    let all = Targets {
        all: true,
        ..Targets::default()
    };

    // Version 1 reaches every tenant; SKIP installs it where it is absent.
    let set = field_sets::create(&db.db, &draft(v1())).await.expect("set");
    let (_, first) = run_job(&db, set.id, Strategy::Skip).await;
    assert!(first.values().all(|r| r["action"] == "installed"));

    // Some tenants edit their copy: relabel `sector`, add a choice to it,
    // add a field of their own; one of them records a value of `audited`.
    for i in 0..EDITORS {
        let tenant = registry
            .get(&tenancy::Slug::parse(&slug(i)).expect("slug"))
            .await
            .expect("tenant");
        let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
        let copy = sets::list(tx.conn(), Some("clients")).await.expect("sets")[0].clone();
        let mut fields = serde_json::to_value(&copy.fields).expect("json");
        fields[0]["label"] = json!("Our sector");
        fields[0]["options"] = json!(["energy", "retail", "farming"]);
        fields
            .as_array_mut()
            .expect("array")
            .push(json!({"key": "local_note", "label": "Note", "type": "text"}));
        sets::save(
            tx.conn(),
            Some((copy.id, copy.revision)),
            &Draft {
                model: "clients".into(),
                name: "esg".into(),
                label: "ESG".into(),
                fields,
            },
            None,
        )
        .await
        .expect("local edit");
        if i == 0 {
            tx.execute_unprepared(
                "INSERT INTO clients (id, name, status, custom) VALUES \
                 (gen_random_uuid(), 'Audited Co', 'lead', '{\"sector\": \"energy\", \"audited\": true}')",
            )
            .await
            .expect("record");
        }
        tx.commit().await.expect("commit");
    }

    // Version 2, previewed, then each strategy run; each real outcome is
    // what the dry run said.
    let set = field_sets::update(&db.db, set.id, 1, &draft(v2()))
        .await
        .expect("v2");
    assert_eq!(set.version, 2);
    let before = distribution::dry_run(&registry, set.id, &all)
        .await
        .expect("dry run");
    assert_eq!(before.len(), TENANTS);
    // The dry run wrote nothing.
    assert_eq!(tenant_set(&db, 0).await.base_version, Some(1));

    let (_, skipped) = run_job(&db, set.id, Strategy::Skip).await;
    assert_eq!(skipped, previewed(&before, "skip"));
    assert!(skipped.values().all(|r| r["action"] == "skipped"));

    let (_, merged) = run_job(&db, set.id, Strategy::Merge).await;
    assert_eq!(merged, previewed(&before, "merge"));
    // An untouched tenant takes the platform's version whole.
    let plain = tenant_set(&db, EDITORS).await;
    assert_eq!(plain.fields, parse_definitions(&v2()).expect("v2"));
    assert!(
        merged[&slug(EDITORS)]["conflicts"]
            .as_array()
            .expect("c")
            .is_empty()
    );
    // An editor keeps its own field and choice, takes the platform's
    // relabel of scope1 and its new field, and reports the label both
    // sides changed (the platform's wins). `audited` is removed, except
    // where a record holds a value: there it is retired.
    let edited = tenant_set(&db, 1).await;
    let keys: Vec<&str> = edited.fields.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["sector", "scope1", "reported", "local_note"]);
    assert_eq!(edited.fields[0].label, "Industry sector");
    assert_eq!(
        edited.fields[0].options,
        ["energy", "retail", "transport", "farming"]
    );
    assert_eq!(edited.fields[1].label, "Scope 1 (tCO2e)");
    let conflicts = &merged[&slug(1)]["conflicts"];
    assert_eq!(
        conflicts,
        &json!([{"key": "sector", "attribute": "label", "tenant": "Our sector",
                 "platform": "Industry sector", "kept": "platform"}])
    );
    assert_eq!(merged[&slug(1)]["removed"], json!(["audited"]));
    assert_eq!(merged[&slug(0)]["retired"], json!(["audited"]));
    let zero = tenant_set(&db, 0).await;
    assert!(zero.fields.iter().any(|d| d.key == "audited" && d.retired));

    // OVERWRITE, previewed again (the merge changed the copies): the
    // editors lose their own field, and the report names it.
    let again = distribution::dry_run(&registry, set.id, &all)
        .await
        .expect("dry run");
    let (_, overwritten) = run_job(&db, set.id, Strategy::Overwrite).await;
    assert_eq!(overwritten, previewed(&again, "overwrite"));
    assert_eq!(overwritten[&slug(1)]["removed"], json!(["local_note"]));
    assert_eq!(overwritten[&slug(EDITORS)]["action"], "unchanged");
    let edited = tenant_set(&db, 1).await;
    assert_eq!(edited.fields, parse_definitions(&v2()).expect("v2"));
}

/// A random-ish number in `0..n`, from a seed printed on failure.
fn next(seed: &mut u64, n: u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed % n
}

#[tokio::test]
async fn a_job_survives_ten_kills_of_its_worker_and_applies_each_item_once() {
    let db = TestDb::new(4).await;
    create_tenants(&db, TENANTS).await;
    let registry = db.registry();
    let set = field_sets::create(&db.db, &draft(v1())).await.expect("set");
    let job = distribution::start(
        &registry,
        set.id,
        &Targets {
            all: true,
            ..Targets::default()
        },
        Strategy::Overwrite,
        2,
        "test",
    )
    .await
    .expect("start");
    let mut seed = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
            % u128::from(u64::MAX),
    )
    .expect("seed")
        | 1;
    eprintln!("seed {seed}");
    let mut mid_job = 0;
    for kill in 0..10 {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_migrator"))
            .args(["jobs", "work", "--workers", "2"])
            .env("DATABASE_URL", &db.url)
            .env("STRATA__REDIS__URL", &db.redis.url)
            .env("STRATA__REDIS__PREFIX", &db.redis.prefix)
            .env_remove("STRATA_CONFIG")
            .kill_on_drop(true)
            .spawn()
            .expect("worker");
        tokio::time::sleep(Duration::from_millis(60 + next(&mut seed, 140))).await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reaped");
        let p = jobs::progress(&db.db, job).await.expect("progress");
        eprintln!("kill {kill}: {} of {} done", p.done, p.total);
        if p.done < p.total {
            mid_job += 1;
        }
    }
    assert!(mid_job >= 3, "the job finished before most kills");
    // What is left runs to the end.
    let out = migrator(&db, &["jobs", "work", "--until-idle", "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = jobs::progress(&db.db, job).await.expect("progress");
    assert_eq!(
        (p.status.as_str(), p.done, p.failed),
        ("finished", TENANTS as i64, 0),
        "{p:?}"
    );
    // Each tenant's set was written exactly once: created at revision 1,
    // never rewritten (a second run would have made it 2, as OVERWRITE
    // of an identical copy is `unchanged` only when nothing differs).
    for i in 0..TENANTS {
        let s = tenant_set(&db, i).await;
        assert_eq!((s.revision, s.base_version), (1, Some(1)), "{}", slug(i));
    }
    let items = jobs::items(&db.db, job, None).await.expect("items");
    assert!(items.iter().all(|i| {
        i.result
            .as_ref()
            .is_some_and(|r| r["action"] == "installed")
    }));
}

#[tokio::test]
async fn jobs_bound_their_concurrency_and_can_be_cancelled_and_retried() {
    let db = TestDb::new(8).await;
    create_tenants(&db, 6).await;
    let registry = db.registry();
    // org-005 has a local set of the same name: landing there fails, for
    // good (another attempt would fail the same way).
    let tenant = registry
        .get(&tenancy::Slug::parse(&slug(5)).expect("slug"))
        .await
        .expect("tenant");
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    let local = sets::save(
        tx.conn(),
        None,
        &Draft {
            model: "clients".into(),
            name: "esg".into(),
            label: "Ours".into(),
            fields: json!([]),
        },
        None,
    )
    .await
    .expect("local set");
    tx.commit().await.expect("commit");

    let set = field_sets::create(&db.db, &draft(v1())).await.expect("set");
    let job = distribution::start(
        &registry,
        set.id,
        &Targets {
            all: true,
            ..Targets::default()
        },
        Strategy::Merge,
        2,
        "test",
    )
    .await
    .expect("start");
    // Two items at once, never a third.
    let first = jobs::claim(&registry).await.expect("claim").expect("one");
    let second = jobs::claim(&registry).await.expect("claim").expect("two");
    assert_ne!(first.tenant.slug(), second.tenant.slug());
    assert!(jobs::claim(&registry).await.expect("claim").is_none());
    first
        .complete(json!({"action": "test"}))
        .await
        .expect("complete");
    let third = jobs::claim(&registry)
        .await
        .expect("claim")
        .expect("a slot is free");
    // Cancelling leaves the items in hand to finish and stops the rest.
    let p = jobs::cancel(&db.db, job).await.expect("cancel");
    assert_eq!((p.status.as_str(), p.cancelled), ("cancelled", 3), "{p:?}");
    second
        .complete(json!({"action": "test"}))
        .await
        .expect("complete");
    third
        .complete(json!({"action": "test"}))
        .await
        .expect("complete");
    assert!(jobs::claim(&registry).await.expect("claim").is_none());
    let p = jobs::progress(&db.db, job).await.expect("progress");
    assert_eq!((p.done, p.cancelled, p.pending), (3, 3, 0), "{p:?}");

    // Retry runs the cancelled items; the clash fails once, for good.
    let p = jobs::retry(&db.db, job).await.expect("retry");
    assert_eq!((p.status.as_str(), p.pending), ("running", 3), "{p:?}");
    work(&registry, 2).await;
    let p = jobs::progress(&db.db, job).await.expect("progress");
    assert_eq!(
        (p.status.as_str(), p.done, p.failed),
        ("finished", 5, 1),
        "{p:?}"
    );
    let failed = jobs::items(&db.db, job, Some("failed"))
        .await
        .expect("items");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].tenant.as_str(), failed[0].attempts),
        ("org-005", 1)
    );
    assert!(
        failed[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("already has a field set of this name")),
        "{failed:?}"
    );
    // Once the local set is gone, retrying the failed item lands it.
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    sets::delete(tx.conn(), local.set.expect("set").id)
        .await
        .expect("delete");
    tx.commit().await.expect("commit");
    jobs::retry(&db.db, job).await.expect("retry");
    work(&registry, 2).await;
    let p = jobs::progress(&db.db, job).await.expect("progress");
    assert_eq!(
        (p.status.as_str(), p.done, p.failed),
        ("finished", 6, 0),
        "{p:?}"
    );
    // The CLI shows the same.
    let out = migrator(
        &db,
        &["jobs", "show", &job.to_string(), "--items", "--json"],
    )
    .await;
    assert!(out.status.success());
    let shown = crate::stdout_json(&out);
    assert_eq!(shown["job"]["done"], 6);
    assert_eq!(shown["items"].as_array().map(Vec::len), Some(6));
    // Distributing from the command line: the dry run, then a job run
    // here to its end.
    let id = set.id.to_string();
    let out = migrator(
        &db,
        &[
            "field-sets",
            "distribute",
            &id,
            "--all",
            "--dry-run",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let previews = crate::stdout_json(&out);
    assert_eq!(previews.as_array().map(Vec::len), Some(6));
    // (The three items completed by hand above landed nothing.)
    let skipped = previews
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["strategies"]["skip"]["outcome"]["action"] == "skipped")
        .count();
    assert_eq!(skipped, 3, "{previews}");
    let out = migrator(
        &db,
        &[
            "field-sets",
            "distribute",
            &id,
            "--tenant",
            "org-000",
            "--strategy",
            "overwrite",
            "--wait",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ran = crate::stdout_json(&out);
    assert_eq!(
        (ran["job"]["status"].clone(), ran["job"]["done"].clone()),
        (json!("finished"), json!(1))
    );
    let out = migrator(
        &db,
        &[
            "field-sets",
            "distribute",
            &id,
            "--tenant",
            "nobody",
            "--strategy",
            "skip",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
}
