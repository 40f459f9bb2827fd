//! A multi-device model test of the native sync protocol: devices create,
//! edit and delete clients offline, sync in random order, lose push
//! responses (the push applied, the answer dropped) and retry, while a REST
//! writer changes the same records. After everyone syncs, every device
//! holds exactly the server's rows, and no device is stuck.
//!
//! `MODEL_SEED` and `MODEL_STEPS` replay a run; on failure the test prints
//! the smallest step count at which that seed still fails.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tenancy::TenantTx;
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";
const DEVICES: usize = 4;

/// What a device or the server holds of one client: name and city.
type Row = (String, Option<String>);

struct Device {
    client_id: String,
    /// id → (version, row), as the device last saw it or changed it.
    local: BTreeMap<Uuid, (i64, Row)>,
    outbox: Vec<Value>,
    next_mutation: i64,
    cursor: Option<String>,
}

struct World<'a> {
    app: &'a TestApp,
    token: String,
    rng: StdRng,
    devices: Vec<Device>,
}

fn row_of(record: &Value) -> (Uuid, i64, Row) {
    (
        record["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .expect("id"),
        record["version"].as_i64().expect("version"),
        (
            record["name"].as_str().expect("name").to_owned(),
            record["city"].as_str().map(str::to_owned),
        ),
    )
}

impl World<'_> {
    async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let res = self
            .app
            .on("acme", Method::POST, path)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{path}: {status} {body}"))
        }
    }

    fn mutation(&mut self, d: usize, op: &str, id: Uuid, base: Option<i64>, fields: Value) {
        let dev = &mut self.devices[d];
        dev.next_mutation += 1;
        let mut m = json!({ "mutation_id": dev.next_mutation, "op": op, "model": "clients",
                            "id": id, "fields": fields });
        if let Some(v) = base {
            m["base_version"] = json!(v);
        }
        dev.outbox.push(m);
    }

    /// Pushes the device's outbox (the answer lost with probability
    /// `lose`), then pulls to the end if the push was answered.
    async fn sync(&mut self, d: usize, lose: f64) -> Result<(), String> {
        if !self.devices[d].outbox.is_empty() {
            let body = json!({ "client_id": self.devices[d].client_id,
                               "mutations": self.devices[d].outbox });
            let answer = self.post("/api/v1/sync/push", &body).await?;
            if self.rng.random_bool(lose) {
                // Applied on the server; the device never heard back.
                if std::env::var("MODEL_TRACE").is_ok() {
                    eprintln!("  lost answer: {answer}");
                }
                return Ok(());
            }
            if std::env::var("MODEL_TRACE").is_ok() {
                eprintln!("  answer: {answer}");
            }
            self.devices[d].outbox.clear();
            for r in answer["results"].as_array().into_iter().flatten() {
                if r["status"] == "conflict"
                    && let Some(server) = r.get("server").filter(|s| s.is_object())
                {
                    let (id, v, row) = row_of(server);
                    self.devices[d].local.insert(id, (v, row));
                }
            }
        }
        loop {
            let body = json!({ "models": ["clients"], "cursor": self.devices[d].cursor,
                               "limit": 50, "client_id": self.devices[d].client_id });
            let page = self.post("/api/v1/sync/pull", &body).await?;
            let changes = &page["changes"]["clients"];
            if std::env::var("MODEL_TRACE").is_ok() {
                eprintln!("  pulled: {changes}");
            }
            for list in ["created", "updated"] {
                for rec in changes[list].as_array().into_iter().flatten() {
                    let (id, v, row) = row_of(rec);
                    self.devices[d].local.insert(id, (v, row));
                }
            }
            for id in changes["deleted"].as_array().into_iter().flatten() {
                if let Some(id) = id.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                    self.devices[d].local.remove(&id);
                }
            }
            self.devices[d].cursor = page["cursor"].as_str().map(str::to_owned);
            if page["has_more"] != true {
                return Ok(());
            }
        }
    }

    /// One random step.
    async fn step(&mut self, n: usize) -> Result<(), String> {
        let d = self.rng.random_range(0..DEVICES);
        if std::env::var("MODEL_TRACE").is_ok() {
            eprintln!(
                "step {n}: device {d} local {:?} outbox {:?}",
                self.devices[d].local.keys().collect::<Vec<_>>(),
                self.devices[d].outbox
            );
        }
        let pick = |rng: &mut StdRng, dev: &Device| {
            let ids: Vec<&Uuid> = dev.local.keys().collect();
            (!ids.is_empty()).then(|| *ids[rng.random_range(0..ids.len())])
        };
        match self.rng.random_range(0..100) {
            0..30 => {
                let id = Uuid::now_v7();
                let name = format!("c{n}");
                self.devices[d].local.insert(id, (1, (name.clone(), None)));
                self.mutation(
                    d,
                    "create",
                    id,
                    None,
                    json!({ "name": name, "status": "lead" }),
                );
            }
            30..55 => {
                if let Some(id) = pick(&mut self.rng, &self.devices[d]) {
                    let (v, (name, _)) = self.devices[d].local[&id].clone();
                    let city = format!("city{n}");
                    self.devices[d]
                        .local
                        .insert(id, (v, (name, Some(city.clone()))));
                    self.mutation(d, "update", id, Some(v), json!({ "city": city }));
                }
            }
            55..62 => {
                if let Some(id) = pick(&mut self.rng, &self.devices[d]) {
                    let (v, _) = self.devices[d].local.remove(&id).expect("picked");
                    self.mutation(d, "delete", id, Some(v), json!({}));
                }
            }
            62..90 => self.sync(d, 0.2).await?,
            _ => self.rest_write(n).await?,
        }
        Ok(())
    }

    /// A REST writer edits or deletes a random server record.
    async fn rest_write(&mut self, n: usize) -> Result<(), String> {
        let list = self
            .app
            .on("acme", Method::GET, "/api/v1/clients?limit=500")
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json::<Value>()
            .await
            .map_err(|e| e.to_string())?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return Ok(());
        }
        let rec = &items[self.rng.random_range(0..items.len())];
        let (id, version, _) = row_of(rec);
        let req = if self.rng.random_bool(0.8) {
            self.app
                .on("acme", Method::PATCH, &format!("/api/v1/clients/{id}"))
                .json(&json!({ "city": format!("rest{n}"), "version": version }))
        } else {
            self.app
                .on("acme", Method::DELETE, &format!("/api/v1/clients/{id}"))
                .header("if-match", version.to_string())
        };
        let res = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("REST write: {}", res.status()));
        }
        Ok(())
    }
}

/// Runs `steps` random steps from `seed`, then a final sync of everyone;
/// the first difference found, if any.
async fn run(seed: u64, steps: usize) -> Result<(), String> {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let mut world = World {
        app: &app,
        token,
        rng: StdRng::seed_from_u64(seed),
        devices: (0..DEVICES)
            .map(|i| Device {
                client_id: format!("device-{i}"),
                local: BTreeMap::new(),
                outbox: Vec::new(),
                next_mutation: 0,
                cursor: None,
            })
            .collect(),
    };
    for n in 0..steps {
        world.step(n).await.map_err(|e| format!("step {n}: {e}"))?;
    }
    // Everyone syncs, with no lost answers, twice: the second round brings
    // each device what the others pushed after its first.
    for _ in 0..2 {
        for d in 0..DEVICES {
            world
                .sync(d, 0.0)
                .await
                .map_err(|e| format!("final sync: {e}"))?;
        }
    }
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    let rows = tx
        .conn()
        .query_all_raw(tenancy::stmt("SELECT id, name, city FROM clients", []))
        .await
        .expect("rows");
    tx.commit().await.expect("commit");
    let server: BTreeMap<Uuid, Row> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).expect("id"),
                (
                    r.try_get_by_index(1).expect("name"),
                    r.try_get_by_index(2).expect("city"),
                ),
            )
        })
        .collect();
    for (i, dev) in world.devices.iter().enumerate() {
        if !dev.outbox.is_empty() {
            return Err(format!(
                "device {i} is stuck with {} mutations",
                dev.outbox.len()
            ));
        }
        let local: BTreeMap<Uuid, Row> = dev
            .local
            .iter()
            .map(|(id, (_, row))| (*id, row.clone()))
            .collect();
        if local != server {
            let missing = server.keys().filter(|k| !local.contains_key(k)).count();
            let extra = local.keys().filter(|k| !server.contains_key(k)).count();
            let differ = local
                .iter()
                .filter(|(k, v)| server.get(k).is_some_and(|s| s != *v))
                .count();
            return Err(format!(
                "device {i} differs from the server ({} rows): {missing} missing, \
                 {extra} extra (ghosts), {differ} with other values",
                server.len()
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_converge_on_the_server_whatever_the_order_and_losses() {
    let seed = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    let steps = std::env::var("MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let started = std::time::Instant::now();
    let Err(failure) = run(seed, steps).await else {
        eprintln!(
            "model: seed {seed}, {steps} steps in {:?}",
            started.elapsed()
        );
        return;
    };
    eprintln!("model: seed {seed} failed after {steps} steps: {failure}; shrinking");
    // The smallest prefix of this seed's run that still fails.
    let (mut good, mut bad) = (0, steps);
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        if run(seed, mid).await.is_ok() {
            good = mid;
        } else {
            bad = mid;
        }
    }
    panic!("{failure}\nreproduce with MODEL_SEED={seed} MODEL_STEPS={bad}");
}
