//! Soak test: the release `strata-server` (`SERVER_BIN`) under a steady,
//! bounded mix of sign-ins, sync pushes and pulls, lists and reads for
//! `SOAK_SECONDS` (default 600) on 127.0.0.1. It fails unless every request
//! succeeds and the server's resident memory stays flat after the warm-up
//! (the first fifth of the run): the median of the last fifth's samples
//! within 10 % of the median of the fifth after the warm-up. Single
//! samples vary with the work in flight at that moment (a sign-in's
//! password check takes 19 MiB); those are reported as the peak.
//! `just soak` runs it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, env_or};
use serde_json::{Value, json};
use tenancy::testing::TestDb;
use tenancy::{FirstAdmin, NewTenant, Slug};

const PASSWORD: &str = "soak test password";

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors: AtomicU64,
    sign_ins: AtomicU64,
    pushed: AtomicU64,
    pulled: AtomicU64,
}

struct Worker {
    client: reqwest::Client,
    address: String,
    host: String,
    email: String,
    token: String,
    device: String,
    mutation: u64,
    cursor: Option<String>,
    counts: Arc<Counts>,
}

impl Worker {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header(reqwest::header::HOST, &self.host)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        match req.send().await {
            Ok(res) if res.status().is_success() => res.json().await.ok().or(Some(Value::Null)),
            Ok(res) => {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                if self.counts.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("{path}: {status} {text}");
                }
                None
            }
            Err(e) => {
                if self.counts.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("{path}: {e}");
                }
                None
            }
        }
    }

    async fn sign_in(&mut self) {
        let body = json!({ "email": self.email, "password": PASSWORD });
        if let Some(res) = self
            .send(reqwest::Method::POST, "/api/v1/auth/token", Some(body))
            .await
        {
            self.token = res["access_token"].as_str().unwrap_or_default().to_owned();
            self.counts.sign_ins.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn round(&mut self, n: u64) {
        if n.is_multiple_of(50) {
            self.sign_in().await;
        }
        let mutations: Vec<Value> = (0..50)
            .map(|i| {
                self.mutation += 1;
                json!({ "mutation_id": self.mutation, "op": "create", "model": "clients",
                        "id": uuid::Uuid::now_v7(),
                        "fields": { "name": format!("{} {n}-{i}", self.device), "status": "lead",
                                    "city": "Lisbon", "country": "PT" } })
            })
            .collect();
        let push = json!({ "client_id": self.device, "mutations": mutations });
        if self
            .send(reqwest::Method::POST, "/api/v1/sync/push", Some(push))
            .await
            .is_some()
        {
            self.counts.pushed.fetch_add(50, Ordering::Relaxed);
        }
        // Pull what changed since this device's cursor, page by page.
        for _ in 0..20 {
            let body = json!({ "models": ["clients"], "cursor": self.cursor, "limit": 500 });
            let Some(page) = self
                .send(reqwest::Method::POST, "/api/v1/sync/pull", Some(body))
                .await
            else {
                break;
            };
            let got = page["changes"]["clients"]["created"]
                .as_array()
                .map_or(0, Vec::len)
                + page["changes"]["clients"]["updated"]
                    .as_array()
                    .map_or(0, Vec::len);
            self.counts.pulled.fetch_add(got as u64, Ordering::Relaxed);
            self.cursor = page["cursor"].as_str().map(str::to_owned);
            if page["has_more"] != true {
                break;
            }
        }
        let list = self
            .send(reqwest::Method::GET, "/api/v1/clients?limit=50", None)
            .await;
        if let Some(id) = list
            .as_ref()
            .and_then(|l| l["items"][0]["id"].as_str())
            .map(str::to_owned)
        {
            self.send(reqwest::Method::GET, &format!("/api/v1/clients/{id}"), None)
                .await;
        }
    }
}

#[tokio::main]
async fn main() {
    let secs: u64 = env_or("SOAK_SECONDS", 600);
    let workers: usize = env_or("SOAK_WORKERS", 4);
    let Ok(bin) = std::env::var("SERVER_BIN") else {
        eprintln!("SERVER_BIN is not set: run `just soak`");
        return;
    };
    let db = TestDb::new(2).await;
    let hash = domain::password::Password::parse(PASSWORD)
        .expect("password")
        .hash();
    for t in 0..2 {
        let slug = format!("soak-{t}");
        let new = NewTenant::new(Slug::parse(&slug).expect("slug"), &slug, &[], "localhost")
            .expect("tenant")
            .with_admin(FirstAdmin {
                email: format!("admin@{slug}.test"),
                full_name: "Admin".into(),
                password_hash: hash.clone(),
            });
        db.registry().create(&new).await.expect("create");
    }
    let server = Server::start(&bin, &db, 10).await;
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + Duration::from_secs(secs);
    println!(
        "== soak: {workers} clients for {secs} s, each round: a push of 50, pulls, a list, \
         a read; a sign-in every 50 rounds; 5 rounds/s per client =="
    );
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let slug = format!("soak-{}", w % 2);
            let mut worker = Worker {
                client: reqwest::Client::new(),
                address: server.address.clone(),
                host: format!("{slug}.localhost"),
                email: format!("admin@{slug}.test"),
                token: String::new(),
                device: format!("soak-device-{w}"),
                mutation: 0,
                cursor: None,
                counts: Arc::clone(&counts),
            };
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut n = 0;
                while Instant::now() < deadline {
                    tick.tick().await;
                    worker.round(n).await;
                    n += 1;
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (rss, _) = server.memory();
        let t = started.elapsed().as_secs_f64();
        samples.push((t, rss));
        println!(
            "{t:6.0} s  RSS {rss:6.1} MiB  requests {:>8}  errors {}  sign-ins {}  pushed {}  pulled {}",
            counts.requests.load(Ordering::Relaxed),
            counts.errors.load(Ordering::Relaxed),
            counts.sign_ins.load(Ordering::Relaxed),
            counts.pushed.load(Ordering::Relaxed),
            counts.pulled.load(Ordering::Relaxed),
        );
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let (_, peak) = server.memory();
    drop(server);
    let fifth = secs as f64 / 5.0;
    let median = |from: f64, to: f64| {
        let mut xs: Vec<f64> = samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, r)| *r)
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let early = median(fifth, 2.0 * fifth);
    let late = median(4.0 * fifth, f64::INFINITY);
    let high = samples
        .iter()
        .filter(|(t, _)| *t >= fifth)
        .map(|(_, r)| *r)
        .fold(0.0, f64::max);
    let errors = counts.errors.load(Ordering::Relaxed);
    let requests = counts.requests.load(Ordering::Relaxed);
    println!(
        "requests {requests} ({:.0}/s), errors {errors}, sign-ins {}, records pushed {}, pulled {}",
        requests as f64 / secs as f64,
        counts.sign_ins.load(Ordering::Relaxed),
        counts.pushed.load(Ordering::Relaxed),
        counts.pulled.load(Ordering::Relaxed),
    );
    println!(
        "RSS median after warm-up {early:.1} MiB, at the end {late:.1} MiB ({:+.1} %); \
         highest sample {high:.1} MiB, peak {peak:.1} MiB",
        (late / early - 1.0) * 100.0
    );
    let flat = (late / early - 1.0).abs() <= 0.10;
    if errors > 0 || !flat {
        eprintln!("soak FAILED: errors {errors}, RSS flat: {flat}");
        std::process::exit(1);
    }
    println!("soak passed");
}
