//! The CRM REST API: role matrix, pagination, optimistic concurrency,
//! field errors, tenant isolation of ids, and the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, problem, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

struct Caller<'a> {
    app: &'a TestApp,
    slug: &'a str,
    token: String,
}

impl Caller<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self
            .app
            .on(self.slug, method, path)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>, want: u16) -> Value {
        let res = self.send(method.clone(), path, body).await;
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        assert_eq!(status, want, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

async fn admin<'a>(app: &'a TestApp, slug: &'a str) -> Caller<'a> {
    let (token, _) = app
        .tokens(slug, &format!("admin@{slug}.test"), PASSWORD)
        .await;
    Caller { app, slug, token }
}

/// Creates a user with `roles` and signs them in.
async fn user_with<'a>(admin: &Caller<'a>, name: &str, roles: &[&str]) -> Caller<'a> {
    let email = format!("{name}@{}.test", admin.slug);
    admin
        .json(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({ "email": email, "full_name": name, "password": PASSWORD, "roles": roles }),
            ),
            201,
        )
        .await;
    let (token, _) = admin.app.tokens(admin.slug, &email, PASSWORD).await;
    Caller {
        app: admin.app,
        slug: admin.slug,
        token,
    }
}

#[tokio::test]
async fn role_matrix_per_endpoint() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let admin = admin(&app, "acme").await;
    let client = admin
        .json(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "Initech" })),
            201,
        )
        .await;
    let client_id = client["id"].as_str().expect("id").to_owned();

    // (role, may write CRM, may write branches, may manage users)
    let matrix = [
        ("Read Only", false, false, false),
        ("Analysts", false, false, false),
        ("Sales", true, false, false),
        ("Support", true, false, false),
        ("Users", true, false, false),
        ("Managers", true, true, false),
        ("Administrators", true, true, true),
    ];
    for (i, (role, crm, branches, users)) in matrix.into_iter().enumerate() {
        let caller = user_with(&admin, &format!("user{i}"), &[role]).await;
        let code = |allowed: bool, ok: u16| if allowed { ok } else { 403 };
        for path in [
            "/api/v1/clients",
            "/api/v1/contacts",
            "/api/v1/tasks",
            "/api/v1/notes",
            "/api/v1/branches",
            "/api/v1/users",
            "/api/v1/roles",
        ] {
            caller.json(Method::GET, path, None, 200).await;
        }
        caller
            .json(
                Method::POST,
                "/api/v1/clients",
                Some(json!({ "name": format!("c{i}") })),
                code(crm, 201),
            )
            .await;
        caller
            .json(
                Method::POST,
                "/api/v1/tasks",
                Some(json!({ "title": "call", "client_id": client_id })),
                code(crm, 201),
            )
            .await;
        caller
            .json(
                Method::POST,
                "/api/v1/notes",
                Some(json!({ "body": "hello", "client_id": client_id })),
                code(crm, 201),
            )
            .await;
        caller
            .json(
                Method::POST,
                "/api/v1/contacts",
                Some(json!({ "first_name": "Ann", "client_id": client_id })),
                code(crm, 201),
            )
            .await;
        caller
            .json(
                Method::POST,
                "/api/v1/branches",
                Some(json!({ "name": format!("b{i}") })),
                code(branches, 201),
            )
            .await;
        caller
            .json(
                Method::POST,
                "/api/v1/users",
                Some(json!({ "email": format!("new{i}@acme.test"), "full_name": "New" })),
                code(users, 201),
            )
            .await;
    }
    // No token: 401 everywhere.
    let res = app
        .on("acme", Method::GET, "/api/v1/clients")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn pagination_ordering_and_filters() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let admin = admin(&app, "acme").await;
    for i in 0..120 {
        let status = if i % 3 == 0 { "active" } else { "lead" };
        admin
            .json(
                Method::POST,
                "/api/v1/clients",
                Some(json!({ "name": format!("Client {:03}", 119 - i), "status": status })),
                201,
            )
            .await;
    }
    for order in ["created_at", "-created_at", "name", "-name", "-updated_at"] {
        let mut seen: Vec<String> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = format!("/api/v1/clients?limit=50&order={order}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = admin.json(Method::GET, &path, None, 200).await;
            pages += 1;
            for item in page["items"].as_array().expect("items") {
                seen.push(item["id"].as_str().expect("id").to_owned());
                names.push(item["name"].as_str().expect("name").to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(pages, 3, "{order}");
        assert_eq!(seen.len(), 120, "{order}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 120, "{order}: no record twice");
        if order == "name" {
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted);
        }
        if order == "-name" {
            assert_eq!(names[0], "Client 119");
        }
    }
    let page = admin
        .json(
            Method::GET,
            "/api/v1/clients?status=active&limit=500",
            None,
            200,
        )
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(40));
    let page = admin
        .json(
            Method::GET,
            "/api/v1/clients?q=client%2011&limit=500",
            None,
            200,
        )
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(10));

    // A cursor of one ordering is refused for another; bad parameters are 422.
    let page = admin
        .json(Method::GET, "/api/v1/clients?limit=5", None, 200)
        .await;
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let body = admin
        .json(
            Method::GET,
            &format!("/api/v1/clients?order=name&cursor={cursor}"),
            None,
            422,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "cursor");
    let body = admin
        .json(
            Method::GET,
            "/api/v1/clients?limit=0&order=colour&status=weird",
            None,
            422,
        )
        .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(fields.contains(&"status"), "{body}");
    let res = admin
        .send(Method::GET, "/api/v1/clients?cursor=garbage!", None)
        .await;
    assert_eq!(res.status(), 422);
    let res = admin
        .send(Method::GET, "/api/v1/clients?colour=red", None)
        .await;
    assert_eq!(res.status(), 400, "unknown query parameters are refused");
}

#[tokio::test]
async fn versions_field_errors_and_isolation() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    tenant_with_admin(&db, "other", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let admin = admin(&app, "acme").await;

    let res = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "Initech" })),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let client: Value = res.json().await.expect("json");
    let path = format!("/api/v1/clients/{}", client["id"].as_str().expect("id"));

    let updated = admin
        .json(
            Method::PATCH,
            &path,
            Some(json!({ "name": "Initrode", "version": 1 })),
            200,
        )
        .await;
    assert_eq!(updated["version"], 2);
    // Stale: made against version 1.
    let body = admin
        .json(
            Method::PATCH,
            &path,
            Some(json!({ "name": "Stale", "version": 1 })),
            412,
        )
        .await;
    assert_eq!(body["code"], "stale_version");
    // If-Match works too.
    let res = admin
        .app
        .on("acme", Method::PATCH, &path)
        .bearer_auth(&admin.token)
        .header("if-match", "\"2\"")
        .json(&json!({ "status": "active", "department": null }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"3\"");
    // No version at all.
    let body = admin
        .json(Method::PATCH, &path, Some(json!({ "name": "X" })), 422)
        .await;
    assert_eq!(body["errors"][0]["field"], "version");

    // Every bad field at once, and nothing written.
    let body = admin
        .json(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "", "status": "weird", "email": "nope", "country": "USA" })),
            422,
        )
        .await;
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["country", "email", "name", "status"]);
    let res = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "A", "colour": "red" })),
        )
        .await;
    assert_eq!(res.status(), 400, "unknown fields are refused");
    problem(res).await;
    let res = admin
        .app
        .on("acme", Method::POST, "/api/v1/clients")
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400, "malformed JSON");
    let res = admin
        .send(Method::POST, "/api/v1/clients", Some(json!({ "name": 5 })))
        .await;
    assert_eq!(res.status(), 400, "wrong type");
    let page = admin.json(Method::GET, "/api/v1/clients", None, 200).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));

    // A reference to a record that does not exist names the field.
    let body = admin
        .json(
            Method::POST,
            "/api/v1/contacts",
            Some(json!({ "first_name": "Ann", "client_id": uuid::Uuid::new_v4() })),
            422,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "client_id");
    let body = admin
        .json(
            Method::POST,
            "/api/v1/notes",
            Some(json!({ "body": "x" })),
            422,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "client_id");

    // Another tenant's id is plainly not found here, and vice versa.
    let other = crate::crm::admin(&app, "other").await;
    let theirs = other
        .json(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "Theirs" })),
            201,
        )
        .await;
    let their_path = format!("/api/v1/clients/{}", theirs["id"].as_str().expect("id"));
    admin.json(Method::GET, &their_path, None, 404).await;
    admin
        .json(
            Method::PATCH,
            &their_path,
            Some(json!({ "name": "Mine", "version": 1 })),
            404,
        )
        .await;
    admin.json(Method::DELETE, &their_path, None, 404).await;
    other.json(Method::GET, &their_path, None, 200).await;
    admin
        .json(Method::GET, "/api/v1/clients/not-a-uuid", None, 404)
        .await;

    admin.json(Method::DELETE, &path, None, 204).await;
    admin.json(Method::GET, &path, None, 404).await;
}

#[tokio::test]
async fn the_last_administrator_stays() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let admin = admin(&app, "acme").await;
    let me = admin.json(Method::GET, "/api/v1/auth/me", None, 200).await;
    let me_path = format!("/api/v1/users/{}", me["id"].as_str().expect("id"));

    admin
        .json(
            Method::PUT,
            &format!("{me_path}/roles"),
            Some(json!({ "roles": ["Users"] })),
            409,
        )
        .await;
    admin.json(Method::DELETE, &me_path, None, 409).await;
    admin
        .json(
            Method::PATCH,
            &me_path,
            Some(json!({ "is_active": false, "version": 1 })),
            409,
        )
        .await;
    let body = admin
        .json(
            Method::PUT,
            &format!("{me_path}/roles"),
            Some(json!({ "roles": ["Kings"] })),
            422,
        )
        .await;
    assert_eq!(body["errors"][0]["field"], "roles");

    // With a second administrator, the first may step down.
    user_with(&admin, "second", &["Administrators"]).await;
    let updated = admin
        .json(
            Method::PUT,
            &format!("{me_path}/roles"),
            Some(json!({ "roles": ["Users"] })),
            200,
        )
        .await;
    assert_eq!(updated["roles"], json!(["Users"]));
}

#[tokio::test]
async fn signup_on_the_platform_domain() {
    let db = TestDb::new(2).await;
    let app = spawn_app(&db, 4).await;
    let signup = |host: &'static str, body: Value| {
        app.client
            .post(format!("{}/api/v1/platform/signup", app.address))
            .header(reqwest::header::HOST, host)
            .json(&body)
            .send()
    };
    let body = json!({
        "slug": "newco", "display_name": "NewCo",
        "admin_email": "Boss@NewCo.test", "admin_password": PASSWORD,
    });
    let res = signup("localhost", body.clone()).await.expect("request");
    assert_eq!(res.status(), 201);
    let (token, _) = app.tokens("newco", "boss@newco.test", PASSWORD).await;
    let caller = Caller {
        app: &app,
        slug: "newco",
        token,
    };
    let me = caller.json(Method::GET, "/api/v1/auth/me", None, 200).await;
    assert_eq!(me["roles"], json!(["Administrators"]));
    let roles = caller.json(Method::GET, "/api/v1/roles", None, 200).await;
    assert_eq!(
        roles.as_array().map(Vec::len),
        Some(domain::roles::SEEDED.len())
    );

    assert_eq!(
        signup("localhost", body.clone())
            .await
            .expect("request")
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        signup("newco.localhost", body)
            .await
            .expect("request")
            .status(),
        404
    );

    let res = signup(
        "localhost",
        json!({ "slug": "PG_x", "display_name": "", "admin_email": "x", "admin_password": "short" }),
    )
    .await
    .expect("request");
    assert_eq!(res.status(), 422);
    let body = problem(res).await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn every_served_route_is_in_the_openapi_document() {
    let db = TestDb::new(2).await;
    let app = spawn_app(&db, 2).await;
    let res = app.get("localhost", "/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    // Routes register their own entries, under their scope's prefix.
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert!(operations > 50, "{operations} operations");
    for (method, path) in [
        ("get", "/health"),
        ("get", "/api/v1/openapi.json"),
        ("patch", "/api/v1/clients/{id}"),
        ("put", "/api/v1/users/{id}/roles"),
        ("post", "/api/v1/sync/rxdb/{model}/pull"),
        ("post", "/api/sync/push/"),
        ("post", "/api/v1/platform/signup"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let id_param = doc["paths"]["/api/v1/clients/{id}"]["get"]["parameters"].to_string();
    assert_eq!(id_param.matches("\"name\":\"id\"").count(), 1, "{id_param}");
    // Record schemas come from the models' descriptions: every field, the
    // private ones never.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("Client", "website"),
        ("Client", "industry"),
        ("ClientCreate", "industry"),
        ("ClientCreate", "website"),
        ("ClientPatch", "version"),
        ("Task", "completed_at"),
        ("User", "roles"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema}.{field} in {}",
            schemas[schema]
        );
    }
    assert!(schemas["TaskCreate"]["properties"]["completed_at"].is_null());
    assert!(schemas["User"]["properties"]["password_hash"].is_null());
    let params = doc["paths"]["/api/v1/tasks"]["get"]["parameters"].to_string();
    assert!(params.contains("due_before"), "{params}");
    let res = app.get("localhost", "/docs/").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.expect("html");
    assert!(html.contains("swagger"), "Swagger UI page");
}
