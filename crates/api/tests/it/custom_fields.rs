//! Custom field sets: administrators define them, every write path checks
//! values against them (REST, the native push, WatermelonDB), lists filter
//! on them, and WatermelonDB carries them as JSON text.

use reqwest::Method;
use serde_json::{Value, json};
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::helpers::{admin_token, send, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

fn energy_set() -> Value {
    json!({
        "model": "clients", "name": "esg", "label": "ESG",
        "fields": [
            {"key": "industry", "label": "Industry", "type": "single_choice",
             "options": ["energy", "retail"], "required": true},
            {"key": "employees", "label": "Employees", "type": "number", "default": 1},
            {"key": "audited", "label": "Audited", "type": "boolean"}
        ]
    })
}

#[tokio::test]
async fn values_are_checked_on_every_path_and_filter_lists() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let token = admin_token(&db, &tenant).await;

    let (s, set) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/field-sets",
        Some(energy_set()),
    )
    .await;
    assert_eq!(s, 201, "{set}");
    assert_eq!(set["revision"], 1);
    // Keys are distinct across a model's sets; definitions are checked.
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/field-sets",
        Some(
            json!({"model": "clients", "name": "other", "label": "Other", "fields": [
                {"key": "industry", "label": "Again", "type": "text"},
                {"key": "Bad", "label": "x", "type": "single_choice"}
            ]}),
        ),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["fields[1].key", "fields[1].options"]);
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/field-sets",
        Some(
            json!({"model": "clients", "name": "other", "label": "Other", "fields": [
                {"key": "industry", "label": "Again", "type": "text"}
            ]}),
        ),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "fields[0].key");
    assert_eq!(body["errors"][0]["message"], "is a field of set `esg`");

    // REST: a value that fails its definition is a field error.
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({"name": "Oil Co", "custom": {"industry": "oil"}})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "custom.industry");
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({"name": "Nameless"})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "custom.industry");
    assert_eq!(body["errors"][0]["message"], "is required");
    let (s, good) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({"name": "Sun Co", "custom": {"industry": "energy", "audited": true}})),
    )
    .await;
    assert_eq!(s, 201, "{good}");
    assert_eq!(
        good["custom"],
        json!({"industry": "energy", "employees": 1, "audited": true})
    );

    // The native push: the same message for the same field.
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/sync/push",
        Some(json!({"client_id": "dev-1", "mutations": [
            {"mutation_id": 1, "op": "create", "model": "clients", "id": Uuid::new_v4(),
             "fields": {"name": "Shop", "custom": {"industry": "retail", "employees": "many"}}},
            {"mutation_id": 2, "op": "create", "model": "clients", "id": Uuid::new_v4(),
             "fields": {"name": "Shop 2", "custom": {"industry": "retail", "employees": 40}}}
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "failed", "{body}");
    assert_eq!(
        body["results"][0]["errors"][0],
        "custom.employees: must be a number"
    );
    assert_eq!(body["results"][1]["status"], "created", "{body}");

    // WatermelonDB: `custom` travels as JSON text both ways; a bad value
    // is named in experimentalRejectedIds.
    let bad_id = Uuid::new_v4();
    let ok_id = Uuid::new_v4();
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/sync/watermelon/push",
        Some(json!({"changes": {"clients": {"created": [
            {"id": bad_id, "name": "W1", "status": "lead", "custom": "{\"industry\":\"coal\"}",
             "_status": "created", "_changed": ""},
            {"id": ok_id, "name": "W2", "status": "lead", "custom": "{\"industry\":\"energy\"}",
             "_status": "created", "_changed": ""}
        ], "updated": [], "deleted": []}}, "last_pulled_at": null})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["experimentalRejectedIds"]["clients"], json!([bad_id]));
    // (A pull reads below the oldest running transaction of the cluster:
    // other tests' may hold W2 back for a moment.)
    let mut w2 = Value::Null;
    for _ in 0..100 {
        let (s, pulled) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/sync/watermelon/pull",
            Some(json!({"last_pulled_at": null, "tables": ["clients"]})),
        )
        .await;
        assert_eq!(s, 200, "{pulled}");
        if let Some(r) = pulled["changes"]["clients"]["created"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == json!(ok_id)))
        {
            w2 = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let text = w2["custom"].as_str().expect("custom as JSON text");
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("json"),
        json!({"industry": "energy", "employees": 1})
    );

    // Lists filter on custom values, checked like the field.
    let (s, list) = send(
        &app,
        &token,
        Method::GET,
        "/api/v1/clients?custom.industry=energy",
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Sun Co", "W2"]);
    let (s, list) = send(
        &app,
        &token,
        Method::GET,
        "/api/v1/clients?custom.employees=40",
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"][0]["name"], "Shop 2");
    let (s, body) = send(
        &app,
        &token,
        Method::GET,
        "/api/v1/clients?custom.industry=oil",
        None,
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "custom.industry");
    let (s, _) = send(
        &app,
        &token,
        Method::GET,
        "/api/v1/clients?custom.nope=1",
        None,
    )
    .await;
    assert_eq!(s, 422);

    // Removing a field whose values records hold retires it; the records
    // keep their values and still save.
    let id = set["id"].as_str().expect("id");
    let (s, saved) = send(
        &app,
        &token,
        Method::PUT,
        &format!("/api/v1/field-sets/{id}"),
        Some(
            json!({"name": "esg", "label": "ESG", "revision": 1, "fields": [
                {"key": "industry", "label": "Industry", "type": "single_choice",
                 "options": ["energy", "retail"], "required": true},
                {"key": "employees", "label": "Employees", "type": "number", "default": 1}
            ]}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{saved}");
    assert_eq!(saved["retired"], json!(["audited"]));
    let client = good["id"].as_str().expect("id");
    let (s, body) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/clients/{client}"),
        Some(json!({"version": good["version"], "custom": good["custom"]})),
    )
    .await;
    assert!(s == 200, "{s} {body}");
    // A stale revision is refused.
    let (s, _) = send(
        &app,
        &token,
        Method::PUT,
        &format!("/api/v1/field-sets/{id}"),
        Some(json!({"name": "esg", "label": "ESG", "revision": 1, "fields": []})),
    )
    .await;
    assert_eq!(s, 412);
    // Deleting the set takes its values off the records.
    let (s, _) = send(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/v1/field-sets/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, after) = send(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/clients/{client}"),
        None,
    )
    .await;
    assert_eq!(after["custom"], json!({}));
    // Only administrators write sets.
    let (s, _) = send(&app, "not-a-token", Method::GET, "/api/v1/field-sets", None).await;
    assert_eq!(s, 401);
}
