//! Spawning the app on a free port over a database of its own.

use std::time::{Duration, Instant};

use api::configuration::Settings;
use api::startup::Application;
use tenancy::testing::TestDb;

#[derive(Clone)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
}

impl TestApp {
    /// GET `path` with the given `Host` header and bearer `token`.
    pub async fn get_as(&self, host: &str, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header(reqwest::header::HOST, host)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GET `path` with the given `Host` header.
    pub async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .expect("request")
    }
}

/// Settings for an app over `db`: port 0, a pool of `pool_size`.
pub fn settings(db: &TestDb, pool_size: u32) -> Settings {
    let mut s: Settings = tenancy::config::load().expect("default configuration");
    s.server.listen = "127.0.0.1:0".into();
    s.server.workers = 2;
    s.server.development = true;
    s.database.url.clone_from(&db.url);
    s.database.pool_size = pool_size;
    s.redis = db.redis.clone();
    s.tenancy.base_domain = "localhost".into();
    s.tenancy.allow_tenant_header = false;
    // Rates far above what any test sends (the limits tests set their own);
    // still checked on every request.
    s.limits.user_per_minute = 1_000_000;
    s.limits.user_burst = 100_000;
    s.limits.tenant_per_minute = 1_000_000;
    s.limits.tenant_burst = 100_000;
    // Webhook receivers run in the test, on 127.0.0.1.
    s.events.allow_targets = vec!["127.0.0.1".into()];
    s.events.poll_interval_ms = 50;
    s
}

/// Starts an app with `settings` and, if `wait` is set, waits until its
/// tenant cache listens to Redis and its standing cache to PostgreSQL.
pub async fn spawn_with(settings: &Settings, wait: bool) -> TestApp {
    // STRATA_TEST_LOG=debug shows the server's logs while debugging a test.
    if let Ok(level) = std::env::var("STRATA_TEST_LOG") {
        api::telemetry::init(&api::configuration::LogSettings {
            format: api::configuration::LogFormat::Pretty,
            level,
        });
    }
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let resolver = app.resolver();
    let standings = app.standings();
    tokio::spawn(app.run_until_stopped());
    let deadline = Instant::now() + Duration::from_secs(10);
    while wait
        && !(resolver.is_listening() && standings.is_listening())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    TestApp {
        address,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client"),
    }
}

/// Settings whose listener hears another database (the test server's
/// `postgres`), so no change notification ever reaches the server: what it
/// follows, it follows from its own requests.
pub fn settings_hearing_nothing(db: &TestDb, pool_size: u32) -> Settings {
    let mut settings = settings(db, pool_size);
    settings.database.listen_url = Some(
        std::env::var("STRATA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    );
    settings
}

pub async fn spawn_app(db: &TestDb, pool_size: u32) -> TestApp {
    spawn_with(&settings(db, pool_size), true).await
}

/// The body of a problem+json response, checked to be one.
pub async fn problem(res: reqwest::Response) -> serde_json::Value {
    let ct = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], status);
    body
}

/// Creates tenant `slug` with administrator `admin@<slug>.test` whose
/// password is `password`.
pub async fn tenant_with_admin(db: &TestDb, slug: &str, password: &str) -> tenancy::Tenant {
    let admin = tenancy::FirstAdmin {
        email: format!("admin@{slug}.test"),
        full_name: "Admin".into(),
        password_hash: domain::password::Password::parse(password)
            .expect("password")
            .hash(),
    };
    let new = tenancy::NewTenant::new(
        tenancy::Slug::parse(slug).expect("slug"),
        slug,
        &[],
        "localhost",
    )
    .expect("tenant")
    .with_admin(admin);
    db.registry().create(&new).await.expect("create")
}

impl TestApp {
    /// A request to `path` on tenant `slug`'s host.
    pub fn on(&self, slug: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .header(reqwest::header::HOST, format!("{slug}.localhost"))
    }

    /// Signs in and returns the token response.
    pub async fn login(&self, slug: &str, email: &str, password: &str) -> reqwest::Response {
        self.on(slug, reqwest::Method::POST, "/api/v1/auth/token")
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// The access and refresh tokens of a successful sign-in.
    pub async fn tokens(&self, slug: &str, email: &str, password: &str) -> (String, String) {
        let res = self.login(slug, email, password).await;
        assert_eq!(res.status(), 200, "login {email}");
        let body: serde_json::Value = res.json().await.expect("json");
        (
            body["access_token"].as_str().expect("access").to_owned(),
            body["refresh_token"].as_str().expect("refresh").to_owned(),
        )
    }
}

/// Runs `sql` in `tenant`'s schema and waits until every transaction open
/// alongside it has ended (the pull horizon has passed it), so the next
/// pull is sure to see its changes.
pub async fn write_and_settle(db: &TestDb, tenant: &tenancy::Tenant, sql: &str) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let tx = tenancy::TenantTx::begin(&db.db, tenant).await.expect("tx");
    tx.conn().execute_unprepared(sql).await.expect("write");
    let xid: String = tx
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_current_xact_id()::text",
        ))
        .await
        .expect("xid")
        .expect("row")
        .try_get_by_index(0)
        .expect("text");
    tx.commit().await.expect("commit");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let passed: bool = db
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8",
                [xid.clone().into()],
            ))
            .await
            .expect("horizon")
            .expect("row")
            .try_get_by_index(0)
            .expect("bool");
        if passed {
            return;
        }
        assert!(Instant::now() < deadline, "the pull horizon did not pass");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An access token of an administrator of `tenant` (made if it has none),
/// signed with the configured secret.
pub async fn admin_token(db: &TestDb, tenant: &tenancy::Tenant) -> String {
    let s: Settings = tenancy::config::load().expect("default configuration");
    let admin = db.administrator(tenant).await;
    api::auth::TokenKeys::new(&s.auth.jwt_secret, 3600, 3600)
        .issue(
            admin,
            tenant.id(),
            uuid::Uuid::now_v7(),
            1,
            vec![domain::roles::ADMINISTRATORS.into()],
        )
        .expect("token")
}

/// A Redis server of the test's own on a free port, killed on drop.
pub struct OwnRedis {
    pub child: std::process::Child,
    pub url: String,
}

impl OwnRedis {
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        Self::start_on(port)
    }

    pub fn start_on(port: u16) -> Option<Self> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let url = format!("redis://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { child, url });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl OwnRedis {
    /// Kills the server (it keeps nothing on disk).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new, empty server on the same port, as after a restart.
    pub fn restarted(&self) -> Self {
        let port: u16 = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        Self::start_on(port).expect("restart redis")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PgBouncer of the test's own in transaction pooling, in front of the
/// test database's server, killed on drop. PgBouncer 1.18 (Debian 12)
/// keeps no prepared statements across transactions: it runs
/// `DEALLOCATE ALL` after each one.
pub struct OwnPgBouncer {
    child: std::process::Child,
    _dir: TempDir,
    pub port: u16,
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl OwnPgBouncer {
    /// In front of the server of `database_url`, with `pool_size` server
    /// connections per database.
    pub fn start(database_url: &str, pool_size: u32) -> Self {
        let (host, port) = server_of(database_url);
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("strata-pgbouncer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(
            dir.join("userlist.txt"),
            "\"postgres\" \"\"\n\"root\" \"\"\n",
        )
        .expect("users");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\ndefault_pool_size = {pool_size}\n\
                 max_client_conn = 1000\n\
                 server_reset_query = DEALLOCATE ALL\nserver_reset_query_always = 1\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {dir}/pgbouncer.log\n",
                dir = dir.display()
            ),
        )
        .expect("ini");
        // PgBouncer refuses to run as root.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut cmd = if root {
            let _ = std::process::Command::new("chown")
                .args(["-R", "postgres", &dir.display().to_string()])
                .status();
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", "pgbouncer"]);
            c
        } else {
            std::process::Command::new("pgbouncer")
        };
        let mut child = cmd
            .arg(&ini)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pgbouncer (scripts/test.sh installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok() {
                return Self {
                    child,
                    _dir: TempDir(dir),
                    port: listen,
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("pgbouncer did not start");
    }

    /// `database_url` with its server replaced by this PgBouncer.
    pub fn url_for(&self, database_url: &str) -> String {
        let (host, port) = server_of(database_url);
        let (scheme, rest) = database_url.split_once("://").expect("a URL");
        let rest = rest
            .replacen(
                &format!("{host}:{port}/"),
                &format!("127.0.0.1:{}/", self.port),
                1,
            )
            .replacen(&format!("{host}/"), &format!("127.0.0.1:{}/", self.port), 1);
        format!("{scheme}://{rest}")
    }
}

impl Drop for OwnPgBouncer {
    fn drop(&mut self) {
        // runuser passes the signal on.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::process::Command::new("pkill")
            .args(["-f", &format!("{}/pgbouncer.ini", self._dir.0.display())])
            .status();
    }
}

/// Host and port of a `postgres://user@host:port/db` URL.
fn server_of(url: &str) -> (String, u16) {
    let url = url.split_once("://").map_or(url, |(_, r)| r);
    let after = url.split_once('@').map_or(url, |(_, r)| r);
    let server = after.split('/').next().unwrap_or_default();
    let (host, port) = server.rsplit_once(':').unwrap_or((server, "5432"));
    (host.to_owned(), port.parse().unwrap_or(5432))
}

/// The operator password [`operator_token`] signs in with.
pub const OPERATOR_PASSWORD: &str = "correct horse battery";

/// Creates operator `ops@strata.test` and signs them in: their access
/// token.
pub async fn operator_token(db: &TestDb, app: &TestApp) -> String {
    let hash = domain::password::Password::parse(OPERATOR_PASSWORD)
        .expect("password")
        .hash();
    tenancy::operators::create(&db.db, "ops@strata.test", &hash)
        .await
        .expect("operator");
    let res = app
        .client
        .post(format!("{}/api/v1/platform/auth/token", app.address))
        .header(reqwest::header::HOST, "localhost")
        .json(&serde_json::json!({ "email": "ops@strata.test", "password": OPERATOR_PASSWORD }))
        .send()
        .await
        .expect("sign in");
    let body: serde_json::Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Sends `method path` (with a JSON `body`) to tenant `acme` as the
/// bearer of `token`: the status and the JSON answer (null if none).
pub async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = app.on("acme", method, path).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Held by the tests that load the machine the most (the sync model's
/// JavaScript clients, the console's Chromium) so they do not run at the
/// same time: on two cores, together they starve each other's clients
/// into timeouts the tests are not about.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
