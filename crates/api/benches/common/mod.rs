//! What the benchmarks share: a closed-loop HTTP load generator and
//! percentiles.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The value at quantile `q` of sorted `xs`.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let i = ((xs.len() as f64 - 1.0) * q).round() as usize;
    xs[i.min(xs.len() - 1)]
}

/// One request of a load run.
pub struct Req {
    pub method: reqwest::Method,
    pub host: String,
    pub path: String,
    pub token: Option<String>,
    pub body: Option<serde_json::Value>,
}

/// Result of a load run.
pub struct Stats {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            self.rps, self.p50, self.p99
        )
    }
}

/// `connections` closed-loop clients, each on its own keep-alive
/// connection, sending `make(n)` for n = 0, 1, 2, ... for `secs` seconds.
/// Every response must be a success.
pub async fn load<F>(address: &str, connections: usize, secs: u64, make: F) -> Stats
where
    F: Fn(usize) -> Req + Send + Sync + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let make = Arc::new(make);
    let workers = (0..connections).map(|w| {
        let make = Arc::clone(&make);
        let address = address.to_owned();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            let mut n = w;
            while Instant::now() < deadline {
                let r = make(n);
                n += connections;
                let mut req = client
                    .request(r.method, format!("{address}{}", r.path))
                    .header(reqwest::header::HOST, r.host);
                if let Some(t) = r.token {
                    req = req.bearer_auth(t);
                }
                if let Some(b) = r.body {
                    req = req.json(&b);
                }
                let started = Instant::now();
                match req.send().await {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.bytes().await;
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(res) => {
                        if failures == 0 {
                            eprintln!(
                                "failed: {} {}",
                                res.status(),
                                res.text().await.unwrap_or_default()
                            );
                        }
                        failures += 1;
                    }
                    Err(e) => {
                        if failures == 0 {
                            eprintln!("failed: {e}");
                        }
                        failures += 1;
                    }
                }
            }
            (latencies, failures)
        })
    });
    let mut all = Vec::new();
    let mut failures = 0;
    for r in futures::future::join_all(workers).await {
        let (l, f) = r.expect("worker");
        all.extend(l);
        failures += f;
    }
    assert_eq!(failures, 0, "requests failed under load");
    all.sort_by(f64::total_cmp);
    Stats {
        rps: all.len() as f64 / secs as f64,
        p50: quantile(&all, 0.5),
        p99: quantile(&all, 0.99),
    }
}

/// A release `strata-server` (the `SERVER_BIN` binary) running as its own
/// process over the given test database, killed when dropped.
pub struct Server {
    child: std::process::Child,
    pub address: String,
}

impl Server {
    /// Starts the server with a pool of `pool_size` and waits until it is ready.
    pub async fn start(bin: &str, db: &tenancy::testing::TestDb, pool_size: u32) -> Self {
        Self::start_with(bin, db, pool_size, &[]).await
    }

    /// As [`Server::start`], with more settings as `STRATA__…` variables.
    pub async fn start_with(
        bin: &str,
        db: &tenancy::testing::TestDb,
        pool_size: u32,
        settings: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new(bin)
            .env("STRATA__DATABASE__URL", &db.url)
            .env("STRATA__DATABASE__POOL_SIZE", pool_size.to_string())
            .env("STRATA__REDIS__URL", &db.redis.url)
            .env("STRATA__REDIS__PREFIX", &db.redis.prefix)
            .env("STRATA__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("STRATA__LOG__LEVEL", "warn")
            .env("STRATA__SERVER__DEVELOPMENT", "true")
            // Rates no benchmark reaches, still checked on every request.
            .env("STRATA__LIMITS__USER_PER_MINUTE", "100000000")
            .env("STRATA__LIMITS__USER_BURST", "1000000")
            .env("STRATA__LIMITS__TENANT_PER_MINUTE", "100000000")
            .env("STRATA__LIMITS__TENANT_BURST", "1000000")
            .envs(settings.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start server");
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{address}/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, address }
    }

    /// VmRSS and VmHWM (peak) in MiB.
    pub fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `pgbench` against `url` with `args` for `secs` seconds, 16 clients
/// on 2 threads: its TPS, or `None` when pgbench is missing or failed.
pub fn pgbench(url: &str, args: &[&str], secs: u64) -> Option<f64> {
    let out = std::process::Command::new("pgbench")
        .args(args)
        .args(["-n", "-c", "16", "-j", "2", "-T", &secs.to_string(), url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
}

/// Prints `pgbench -S` (select-only, 16 clients) on a scratch scale-10
/// dataset in the database of `url`: the machine's reference for the
/// request rates beside it.
pub fn print_pgbench_reference(url: &str, secs: u64) {
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-s", "10", "-q", url])
        .output();
    let tps = match init {
        Ok(out) if out.status.success() => pgbench(url, &["-S"], secs),
        _ => None,
    };
    match tps {
        Some(tps) => println!("reference, pgbench -S -c 16 -j 2 on the same server: {tps:.0} TPS"),
        None => println!("pgbench not available: no reference measured"),
    }
}

/// pgbench running `sql` alone (prepared, 16 clients): PostgreSQL's own
/// rate for a statement a route runs, without the server around it.
pub fn print_statement_reference(url: &str, what: &str, sql: &str, secs: u64) {
    let file = std::env::temp_dir().join(format!("strata-bench-{}.sql", uuid::Uuid::new_v4()));
    let tps = std::fs::write(&file, format!("{sql};\n"))
        .ok()
        .and_then(|()| {
            pgbench(
                url,
                &["-M", "prepared", "-f", &file.to_string_lossy()],
                secs,
            )
        });
    let _ = std::fs::remove_file(&file);
    match tps {
        Some(tps) => println!(
            "reference, {what} alone in PostgreSQL (pgbench, 16 clients): {tps:.0} statements/s"
        ),
        None => println!("pgbench not available: no reference for {what}"),
    }
}

/// `wrk -t2 -c16` (an external load generator, so the figure is not the
/// in-process client's) on `path` of `host` as the bearer of `token`:
/// "N req/s, p50 X, p99 Y", or `None` when wrk is not installed.
pub fn wrk(address: &str, host: &str, token: &str, path: &str, secs: u64) -> Option<String> {
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c16", "--latency", "-d", &format!("{secs}s")])
        .args(["-H", &format!("Host: {host}")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{address}{path}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(|l| format!(" ({})", l.trim()))
        .unwrap_or_default();
    Some(format!(
        "{} req/s, p50 {}, p99 {}{errors}",
        field("Requests/sec:")?,
        field("50%")?,
        field("99%")?
    ))
}

/// `VACUUM (ANALYZE)` of the whole bench database: after creating many
/// tenants, autovacuum would otherwise analyse their tables (and vacuum the
/// grown catalog) during the first measurements. Prints how long it took.
pub async fn settle(db: &tenancy::testing::TestDb) {
    use sea_orm::ConnectionTrait;
    let started = Instant::now();
    db.db
        .execute_unprepared("VACUUM (ANALYZE)")
        .await
        .expect("vacuum");
    println!(
        "settled: VACUUM (ANALYZE) of the database in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
