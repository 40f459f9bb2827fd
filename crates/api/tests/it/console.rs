//! The console in a real browser: headless Chromium driven over
//! WebDriver (chromedriver), against the server on a tenant host. Each
//! main page is saved as a screenshot under `target/screenshots/`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::json;
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "another horse battery";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/test.sh installs chromium-driver)");
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session.
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"]
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    for _ in 0..100 {
        // chromedriver speaks plain HTTP on the loopback address.
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        if let Ok(c) = builder.capabilities(caps.clone()).connect(&url).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

/// The console's address on `slug`'s host (Chromium resolves every
/// `*.localhost` to the loopback address).
fn console(app: &TestApp, slug: &str, path: &str) -> String {
    let port = app.address.rsplit(':').next().expect("port");
    format!("http://{slug}.localhost:{port}/console{path}")
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

async fn sign_in(c: &Client, app: &TestApp, slug: &str, email: &str, password: &str) {
    c.goto(&console(app, slug, "/sign-in"))
        .await
        .expect("sign-in page");
    c.find(Locator::Css("input[name=email]"))
        .await
        .expect("e-mail field")
        .send_keys(email)
        .await
        .expect("type");
    c.find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type");
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
}

/// The page's heading once it is `expected` (a click's navigation may
/// not have happened yet), or the last one seen after five seconds.
async fn heading(c: &Client, expected: &str) -> String {
    let mut seen = String::new();
    for _ in 0..50 {
        if let Ok(h) = c.find(Locator::Css("main h1")).await
            && let Ok(text) = h.text().await
        {
            if text == expected {
                return text;
            }
            seen = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Prints and bounds the first load of each page of `paths` on `host`
/// (the page with `cookie`, its stylesheet and script), as transferred
/// compressed.
async fn first_loads(port: &str, host: &str, label: &str, cookie: &str, paths: &[&str]) {
    for path in paths {
        let mut total = 0;
        for (p, session) in [
            (*path, true),
            ("/assets/console.css", false),
            ("/assets/console.js", false),
        ] {
            let mut req = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/console{p}"))
                .header(reqwest::header::HOST, host)
                .header(reqwest::header::ACCEPT_ENCODING, "gzip");
            if session {
                req = req.header(reqwest::header::COOKIE, cookie);
            }
            let res = req.send().await.expect("get");
            assert_eq!(res.status(), 200, "{p}");
            total += res.bytes().await.expect("body").len();
        }
        println!("{label} page {path}: first load {total} bytes compressed");
        assert!(total <= 150_000, "{path}: {total} bytes");
    }
}

/// Whether the page shows `needle` within five seconds (a form posted back
/// to the page it is on shows the same heading before and after).
async fn until_source(c: &Client, needle: &str) -> bool {
    for _ in 0..50 {
        if c.source().await.is_ok_and(|s| s.contains(needle)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A sync pull of `model` by the bearer of `token`: the status.
async fn pull(app: &TestApp, token: &str, model: &str) -> u16 {
    app.on("acme", Method::POST, "/api/v1/sync/pull")
        .bearer_auth(token)
        .json(&json!({ "cursor": null, "models": [model], "limit": 10 }))
        .send()
        .await
        .expect("pull")
        .status()
        .as_u16()
}

#[tokio::test]
async fn administrators_manage_the_tenant_in_the_console() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let db = TestDb::new(4).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 8).await;
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    // Users may not read branches to begin with.
    let res = app
        .on("acme", Method::PUT, "/api/v1/sync/permissions")
        .bearer_auth(&admin)
        .json(&json!([{ "role": "Users", "model": "branches", "can_pull": false, "can_push": false }]))
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200);
    let driver = Driver::start();
    let c = browser(&driver).await;

    // Signed out, the console sends you to sign in.
    c.goto(&console(&app, "acme", "/")).await.expect("console");
    assert_eq!(heading(&c, "Sign in").await, "Sign in");
    screenshot(&c, "sign-in").await;
    sign_in(&c, &app, "acme", "admin@acme.test", PASSWORD).await;
    assert_eq!(heading(&c, "Dashboard").await, "Dashboard");
    let page = c.source().await.expect("source");
    assert!(page.contains("clients"), "{page}");
    screenshot(&c, "dashboard").await;

    // A user added in the console signs in with their password.
    c.goto(&console(&app, "acme", "/users"))
        .await
        .expect("users");
    assert_eq!(heading(&c, "Users").await, "Users");
    for (name, value) in [
        ("email", "agent@acme.test"),
        ("full_name", "Field Agent"),
        ("password", PASSWORD),
    ] {
        c.find(Locator::Css(&format!("form.stack input[name={name}]")))
            .await
            .expect("field")
            .send_keys(value)
            .await
            .expect("type");
    }
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("add")
        .click()
        .await
        .expect("submit");
    c.wait()
        .for_element(Locator::Css("p.notice"))
        .await
        .expect("added");
    let page = c.source().await.expect("source");
    assert!(page.contains("agent@acme.test"), "{page}");
    screenshot(&c, "users").await;
    let (agent, _) = app.tokens("acme", "agent@acme.test", PASSWORD).await;
    assert_eq!(pull(&app, &agent, "branches").await, 403);

    // Granting a read in the matrix lets that role pull the model at once.
    c.goto(&console(&app, "acme", "/permissions"))
        .await
        .expect("permissions");
    assert_eq!(heading(&c, "Sync permissions").await, "Sync permissions");
    c.find(Locator::Css("input[name=pull][value='Users/branches']"))
        .await
        .expect("cell")
        .click()
        .await
        .expect("tick");
    // The change submits the form; the page comes back with it saved.
    let mut granted = false;
    for _ in 0..50 {
        if pull(&app, &agent, "branches").await == 200 {
            granted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(granted, "the grant did not take");
    assert!(
        c.find(Locator::Css("input[name=pull][value='Users/branches']"))
            .await
            .expect("cell")
            .prop("checked")
            .await
            .expect("checked")
            .as_deref()
            == Some("true")
    );
    screenshot(&c, "permissions").await;

    // A row filter added under the matrix is the API's too.
    let filter_form = c
        .form(Locator::Css("form[action='/console/filters']"))
        .await
        .expect("filter form");
    for (name, value) in [
        ("role", "Users"),
        ("model", "clients"),
        ("field", "assigned_manager_id"),
        ("value", "$user"),
    ] {
        filter_form
            .set_by_name(name, value)
            .await
            .expect("set a field");
    }
    c.find(Locator::Css("form[action='/console/filters'] button"))
        .await
        .expect("add filter")
        .click()
        .await
        .expect("click");
    // The page comes back with the filter listed (the heading alone
    // would not tell the new page from the old).
    c.wait()
        .for_element(Locator::Css("form[action^='/console/filters/'] button"))
        .await
        .expect("the filter, listed");
    let res = app
        .on("acme", Method::GET, "/api/v1/sync/filters")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("filters");
    let filters: serde_json::Value = res.json().await.expect("json");
    assert_eq!(filters[0]["field"], "assigned_manager_id", "{filters}");
    assert_eq!(filters[0]["value"], "$user", "{filters}");
    c.find(Locator::Css("form[action^='/console/filters/'] button"))
        .await
        .expect("remove")
        .click()
        .await
        .expect("click");
    let mut removed = false;
    for _ in 0..50 {
        let res = app
            .on("acme", Method::GET, "/api/v1/sync/filters")
            .bearer_auth(&admin)
            .send()
            .await
            .expect("filters");
        let filters: serde_json::Value = res.json().await.expect("json");
        if filters.as_array().is_some_and(Vec::is_empty) {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(removed, "the filter was not removed");
    assert_eq!(heading(&c, "Sync permissions").await, "Sync permissions");

    // A change made through the API is in the audit trail, with its
    // fields; the sync log has the pulls above.
    let res = app
        .on("acme", Method::POST, "/api/v1/clients")
        .bearer_auth(&admin)
        .json(&json!({ "name": "Audited Co", "city": "Oslo" }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    c.goto(&console(&app, "acme", "/audit?model=clients"))
        .await
        .expect("audit");
    assert_eq!(heading(&c, "Audit trail").await, "Audit trail");
    let page = c.source().await.expect("source");
    assert!(
        page.contains("Audited Co") && page.contains("Oslo"),
        "{page}"
    );
    screenshot(&c, "audit").await;
    c.goto(&console(&app, "acme", "/sync-log?kind=pull"))
        .await
        .expect("sync log");
    assert_eq!(heading(&c, "Sync log").await, "Sync log");
    let page = c.source().await.expect("source");
    assert!(page.contains("<td>pull</td>"), "{page}");
    screenshot(&c, "sync-log").await;
    c.goto(&console(&app, "acme", "/"))
        .await
        .expect("dashboard");
    assert_eq!(heading(&c, "Dashboard").await, "Dashboard");
    screenshot(&c, "dashboard").await;

    // Webhooks: an endpoint added in the console gets a test event.
    c.goto(&console(&app, "acme", "/webhooks"))
        .await
        .expect("webhooks");
    assert_eq!(heading(&c, "Webhooks").await, "Webhooks");
    c.find(Locator::Css("form.stack input[name=url]"))
        .await
        .expect("url")
        .send_keys("http://127.0.0.1:9/hook")
        .await
        .expect("type");
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("add")
        .click()
        .await
        .expect("submit");
    assert_eq!(heading(&c, "Webhook endpoint").await, "Webhook endpoint");
    c.find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("send test event")
        .click()
        .await
        .expect("click");
    let mut sent = false;
    for _ in 0..30 {
        if c.source().await.expect("source").contains("webhook.test") {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the test event is not among the deliveries");
    screenshot(&c, "webhooks").await;

    // Custom fields: a set added in the console checks REST writes.
    c.goto(&console(&app, "acme", "/field-sets"))
        .await
        .expect("custom fields");
    assert_eq!(heading(&c, "Custom fields").await, "Custom fields");
    for (name, value) in [("name", "esg"), ("label", "ESG")] {
        c.find(Locator::Css(&format!("form.stack input[name={name}]")))
            .await
            .expect("field")
            .send_keys(value)
            .await
            .expect("type");
    }
    c.find(Locator::Css("form.stack textarea[name=fields]"))
        .await
        .expect("definitions")
        .send_keys(r#"[{"key": "sector", "label": "Sector", "type": "single_choice", "options": ["energy", "retail"]}]"#)
        .await
        .expect("type");
    c.find(Locator::Css("form.stack button[type=submit]"))
        .await
        .expect("add")
        .click()
        .await
        .expect("submit");
    assert_eq!(heading(&c, "Custom fields").await, "Custom fields");
    assert!(until_source(&c, "<code>sector</code>").await);
    screenshot(&c, "custom-fields").await;

    // Notifications arrive on the open page as they are made.
    c.goto(&console(&app, "acme", "/notifications"))
        .await
        .expect("notifications");
    assert_eq!(heading(&c, "Notifications").await, "Notifications");
    let res = app
        .on("acme", Method::GET, "/api/v1/auth/me")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("me");
    let me: serde_json::Value = res.json().await.expect("json");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // (Assigning yourself notifies nobody: the agent assigns the admin.)
    let res = app
        .on("acme", Method::POST, "/api/v1/clients")
        .bearer_auth(&agent)
        .json(&json!({ "name": "Assigned Co", "assigned_manager_id": me["id"] }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    let mut live = false;
    for _ in 0..100 {
        if c.find(Locator::Css("#notifications li.new")).await.is_ok() {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live, "{}", c.source().await.unwrap_or_default());
    screenshot(&c, "notifications").await;
    let res = app
        .on("acme", Method::POST, "/api/v1/clients")
        .bearer_auth(&admin)
        .json(&json!({ "name": "Coal Co", "custom": { "sector": "coal" } }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 422);

    // A user's roles and password, changed on their page.
    c.goto(&console(&app, "acme", "/users"))
        .await
        .expect("users");
    c.find(Locator::LinkText("agent@acme.test"))
        .await
        .expect("the agent's page")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Field Agent").await, "Field Agent");
    c.find(Locator::Css("input[name=role][value=Managers]"))
        .await
        .expect("Managers")
        .click()
        .await
        .expect("tick");
    c.find(Locator::Css("form[action$='/roles'] button"))
        .await
        .expect("save roles")
        .click()
        .await
        .expect("click");
    assert!(until_source(&c, "value=\"Managers\" checked").await);
    c.find(Locator::Css(
        "form[action$='/password'] input[name=password]",
    ))
    .await
    .expect("password")
    .send_keys(NEW_PASSWORD)
    .await
    .expect("type");
    c.find(Locator::Css("form[action$='/password'] button"))
        .await
        .expect("set password")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Users").await, "Users");
    let page = c.source().await.expect("source");
    assert!(page.contains("Managers, Users"), "{page}");

    // A form posted without its token is refused, even with the cookie.
    let cookie = c
        .get_named_cookie("strata_console")
        .await
        .expect("session cookie");
    assert!(cookie.http_only().unwrap_or(false));
    assert!(cookie.secure().unwrap_or(false));
    let port = app.address.rsplit(':').next().expect("port");
    let forged = |body: &'static str| {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/console/permissions"))
            .header(reqwest::header::HOST, "acme.localhost")
            .header(
                reqwest::header::COOKIE,
                format!("strata_console={}", cookie.value()),
            )
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
    };
    for body in ["push=Users%2Fusers", "_csrf=0000&push=Users%2Fusers"] {
        let res = forged(body).await.expect("post");
        assert_eq!(res.status(), 403, "{body}");
    }
    let res = app
        .on("acme", Method::GET, "/api/v1/sync/permissions")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("matrix");
    let matrix: serde_json::Value = res.json().await.expect("json");
    let users_users = matrix
        .as_array()
        .expect("cells")
        .iter()
        .find(|g| g["role"] == "Users" && g["model"] == "users")
        .expect("cell");
    assert_eq!(
        users_users["can_push"], false,
        "a forged form changed the matrix"
    );

    // On a phone-width screen no page is wider than the screen (wide
    // tables scroll inside themselves).
    c.set_window_size(390, 844).await.expect("phone width");
    for path in [
        "/",
        "/users",
        "/permissions",
        "/sync-log",
        "/audit",
        "/webhooks",
    ] {
        c.goto(&console(&app, "acme", path)).await.expect("page");
        let fits = c
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1",
                vec![],
            )
            .await
            .expect("measure");
        assert_eq!(fits, json!(true), "{path} is wider than a phone");
    }
    c.goto(&console(&app, "acme", "/permissions"))
        .await
        .expect("page");
    screenshot(&c, "phone-permissions").await;
    c.set_window_size(1280, 900).await.expect("desktop width");

    // Each page's first load (the page, its stylesheet and script), as
    // transferred compressed.
    first_loads(
        port,
        "acme.localhost",
        "console",
        &format!("strata_console={}", cookie.value()),
        &[
            "/",
            "/users",
            "/permissions",
            "/audit",
            "/sync-log",
            "/webhooks",
        ],
    )
    .await;

    // Signing out ends the session: the console asks to sign in again, and
    // the old cookie is worthless.
    c.find(Locator::Css("header form button"))
        .await
        .expect("sign out")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Sign in").await, "Sign in");
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{port}/console/"))
        .header(reqwest::header::HOST, "acme.localhost")
        .header(
            reqwest::header::COOKIE,
            format!("strata_console={}", cookie.value()),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 303);

    // A lower role signs in and cannot open the administrators' pages,
    // which its navigation does not offer.
    sign_in(&c, &app, "acme", "agent@acme.test", NEW_PASSWORD).await;
    assert_eq!(heading(&c, "403 Forbidden").await, "403 Forbidden");
    let page = c.source().await.expect("source");
    assert!(!page.contains("href=\"/console/users\""), "{page}");
    for path in ["/users", "/permissions", "/sync-log", "/audit", "/webhooks"] {
        c.goto(&console(&app, "acme", path)).await.expect("page");
        assert_eq!(
            heading(&c, "403 Forbidden").await,
            "403 Forbidden",
            "{path}"
        );
    }
    screenshot(&c, "forbidden").await;
    c.close().await.expect("close");
}

#[tokio::test]
async fn operators_distribute_to_twenty_tenants_through_the_wizard() {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let db = TestDb::new(4).await;
    for i in 0..20 {
        db.create_tenant(&format!("org-{i:02}")).await;
    }
    let app = spawn_app(&db, 8).await;
    let hash = domain::password::Password::parse(crate::helpers::OPERATOR_PASSWORD)
        .expect("password")
        .hash();
    tenancy::operators::create(&db.db, "ops@strata.test", &hash)
        .await
        .expect("operator");
    platform::field_sets::create(
        &db.db,
        &platform::field_sets::Draft {
            model: "clients".into(),
            name: "esg".into(),
            label: "ESG".into(),
            fields: json!([{"key": "sector", "label": "Sector", "type": "single_choice",
                            "options": ["energy", "retail"]}]),
        },
    )
    .await
    .expect("field set");
    let driver = Driver::start();
    let c = browser(&driver).await;
    let port = app.address.rsplit(':').next().expect("port");
    let platform_url = |path: &str| format!("http://localhost:{port}/console{path}");

    c.goto(&platform_url("/sign-in"))
        .await
        .expect("sign-in page");
    assert_eq!(heading(&c, "Operator sign-in").await, "Operator sign-in");
    c.find(Locator::Css("input[name=email]"))
        .await
        .expect("e-mail")
        .send_keys("ops@strata.test")
        .await
        .expect("type");
    c.find(Locator::Css("input[name=password]"))
        .await
        .expect("password")
        .send_keys(crate::helpers::OPERATOR_PASSWORD)
        .await
        .expect("type");
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
    assert_eq!(heading(&c, "Tenants").await, "Tenants");
    let page = c.source().await.expect("source");
    assert!(page.contains("org-19"), "{page}");
    screenshot(&c, "platform-tenants").await;

    c.goto(&platform_url("/field-sets"))
        .await
        .expect("field sets");
    c.find(Locator::LinkText("Distribute…"))
        .await
        .expect("distribute link")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Distribute ESG v1").await, "Distribute ESG v1");
    c.find(Locator::Css("button[data-check=tenant][data-to=true]"))
        .await
        .expect("select all")
        .click()
        .await
        .expect("click");
    c.find(Locator::Css("input[name=strategy][value=merge]"))
        .await
        .expect("merge")
        .click()
        .await
        .expect("click");
    c.find(Locator::Css("button#preview"))
        .await
        .expect("preview")
        .click()
        .await
        .expect("click");
    c.wait()
        .for_element(Locator::Css("main h2"))
        .await
        .expect("the dry run's outcomes");
    let page = c.source().await.expect("source");
    assert_eq!(page.matches("<td>installed").count(), 20, "{page}");
    screenshot(&c, "distribution-preview").await;
    c.find(Locator::Css("button#run"))
        .await
        .expect("run")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Job").await, "Job");
    // The page refreshes itself while the job runs.
    let mut percent = String::new();
    for _ in 0..150 {
        if let Ok(el) = c.find(Locator::Css("#percent")).await
            && let Ok(text) = el.text().await
        {
            percent = text;
            if percent == "100%" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(percent, "100%");
    let page = c.source().await.expect("source");
    assert!(page.contains("20 done, 0 failed"), "{page}");
    screenshot(&c, "distribution-job").await;

    // Tenants: suspend one; delete another only once its slug is typed.
    c.goto(&platform_url("/")).await.expect("tenants");
    c.find(Locator::Css("button[aria-label='Suspend org-00']"))
        .await
        .expect("suspend")
        .click()
        .await
        .expect("click");
    assert!(until_source(&c, "aria-label=\"Resume org-00\"").await);
    let org00 = db
        .registry()
        .get(&tenancy::Slug::parse("org-00").expect("slug"))
        .await
        .expect("org-00");
    assert_eq!(org00.status(), tenancy::TenantStatus::Suspended);
    screenshot(&c, "platform-tenants").await;
    for (typed, gone) in [("org-1", false), ("org-19", true)] {
        c.goto(&platform_url("/tenants/org-19/delete"))
            .await
            .expect("delete");
        c.find(Locator::Css("input[name=confirm]"))
            .await
            .expect("confirm")
            .send_keys(typed)
            .await
            .expect("type");
        c.find(Locator::Css("form.stack button"))
            .await
            .expect("delete")
            .click()
            .await
            .expect("click");
        let expected = if gone {
            "Tenants"
        } else {
            "422 Unprocessable Entity"
        };
        assert_eq!(heading(&c, expected).await, expected, "{typed}");
        let found = db
            .registry()
            .find_by_slug(&tenancy::Slug::parse("org-19").expect("slug"))
            .await
            .expect("registry");
        assert_eq!(found.is_none(), gone, "{typed}");
    }

    // Templates: capture one, and make a tenant from it with its first
    // administrator.
    c.goto(&platform_url("/templates"))
        .await
        .expect("templates");
    assert_eq!(heading(&c, "Templates").await, "Templates");
    for (name, value) in [("name", "starter"), ("description", "ESG starter")] {
        c.find(Locator::Css(&format!(
            "form[action='/console/templates'] input[name={name}]"
        )))
        .await
        .expect("field")
        .send_keys(value)
        .await
        .expect("type");
    }
    c.find(Locator::Css("form[action='/console/templates'] button"))
        .await
        .expect("capture")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Templates").await, "Templates");
    assert!(until_source(&c, "ESG starter").await);
    for (name, value) in [
        ("slug", "fresh"),
        ("display_name", "Fresh"),
        ("admin_email", "boss@fresh.test"),
        ("admin_password", PASSWORD),
    ] {
        c.find(Locator::Css(&format!(
            "form[action='/console/tenants'] input[name={name}]"
        )))
        .await
        .expect("field")
        .send_keys(value)
        .await
        .expect("type");
    }
    c.find(Locator::Css(
        "form[action='/console/tenants'] select[name=template] option[value=starter]",
    ))
    .await
    .expect("template")
    .click()
    .await
    .expect("choose");
    c.find(Locator::Css("form[action='/console/tenants'] button"))
        .await
        .expect("create")
        .click()
        .await
        .expect("click");
    assert_eq!(heading(&c, "Tenants").await, "Tenants");
    let (token, _) = app.tokens("fresh", "boss@fresh.test", PASSWORD).await;
    let res = app
        .on("fresh", Method::GET, "/api/v1/field-sets")
        .bearer_auth(&token)
        .send()
        .await
        .expect("field sets");
    let sets: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        sets[0]["name"], "esg",
        "the template carried the distributed set"
    );
    screenshot(&c, "platform-templates").await;

    // Deliveries paused and resumed for the whole platform.
    c.goto(&platform_url("/events")).await.expect("events");
    c.find(Locator::Css("main form button"))
        .await
        .expect("pause")
        .click()
        .await
        .expect("click");
    assert!(until_source(&c, "Resume deliveries").await);
    let paused = tenancy::deliveries::platform(&db.db)
        .await
        .expect("queue")
        .is_some_and(|q| q.paused);
    assert!(paused);
    c.find(Locator::Css("main form button"))
        .await
        .expect("resume")
        .click()
        .await
        .expect("click");
    // The events page is already showing: wait for the answer to the
    // form, or it may land after the next navigation and replace it.
    assert!(until_source(&c, "Pause deliveries").await);
    assert_eq!(heading(&c, "Event deliveries").await, "Event deliveries");
    c.goto(&platform_url("/metrics")).await.expect("metrics");
    assert_eq!(heading(&c, "Platform metrics").await, "Platform metrics");
    assert!(
        c.source()
            .await
            .expect("source")
            .contains("jobs in the last day")
    );
    screenshot(&c, "platform-metrics").await;
    let token = c
        .get_named_cookie("strata_operator")
        .await
        .expect("operator cookie");
    assert!(token.http_only().unwrap_or(false) && token.secure().unwrap_or(false));
    first_loads(
        port,
        "localhost",
        "platform console",
        &format!("strata_operator={}", token.value()),
        &[
            "/",
            "/field-sets",
            "/jobs",
            "/templates",
            "/events",
            "/metrics",
        ],
    )
    .await;
    c.close().await.expect("close");
}
