//! Templates: captured from a tenant, provisioned from atomically, with
//! or without sample records.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;
use tenancy::TenantTx;
use tenancy::testing::TestDb;

use crate::{migrator, stdout_json};

const CONFIGURATION: &[&str] = &[
    "roles",
    "sync_permissions",
    "sync_filters",
    "journal_settings",
    "event_types",
    "field_sets",
];

async fn one(db: &TestDb, sql: &str) -> Value {
    db.db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<Value>(0)
        .expect("json")
}

/// Every row of `table` in `schema`, as JSON, in a stable order.
async fn rows(db: &TestDb, schema: &str, table: &str) -> Value {
    one(
        db,
        &format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), '[]') \
               FROM {schema}.{table} x"
        ),
    )
    .await
}

#[tokio::test]
async fn a_template_round_trip() {
    let db = TestDb::new(2).await;
    let out = migrator(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--admin-email",
            "boss@acme.test",
            "--admin-password",
            "correct horse battery",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acme = db
        .registry()
        .get(&tenancy::Slug::parse("acme").expect("slug"))
        .await
        .expect("acme");
    // acme's own configuration: a role with its matrix row and row filter,
    // a retention, a disabled event type, a field set; and records linked
    // to its administrator.
    let tx = TenantTx::begin(&db.db, &acme).await.expect("tx");
    tx.execute_unprepared(
        "INSERT INTO roles (id, name, description, is_system) \
           VALUES (gen_random_uuid(), 'Field agents', 'Visit clients', false); \
         INSERT INTO sync_permissions (role_id, model, can_pull, can_push) \
           SELECT id, 'clients', true, true FROM roles WHERE name = 'Field agents'; \
         INSERT INTO sync_filters (id, role_id, model, field, operator, value) \
           SELECT gen_random_uuid(), id, 'clients', 'assigned_manager_id', 'eq', '$user' \
             FROM roles WHERE name = 'Field agents'; \
         INSERT INTO journal_settings (retention_days) VALUES (30); \
         UPDATE event_types SET enabled = false WHERE name = 'client.deleted'; \
         INSERT INTO field_sets (id, model, name, label, fields) VALUES \
           (gen_random_uuid(), 'clients', 'esg', 'ESG', \
            '[{\"key\": \"sector\", \"label\": \"Sector\", \"type\": \"text\"}]'); \
         INSERT INTO clients (id, name, status, assigned_manager_id, custom) \
           SELECT gen_random_uuid(), 'Sample ' || g, 'lead', (SELECT id FROM users LIMIT 1), \
                  '{\"sector\": \"energy\"}' FROM generate_series(1, 10) g;",
    )
    .await
    .expect("configure");
    tx.commit().await.expect("commit");

    let out = migrator(
        &db,
        &[
            "template",
            "capture",
            "starter",
            "--from",
            "acme",
            "--records",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let captured = stdout_json(&out);
    assert_eq!(captured["tables"]["clients"], 10);
    assert_eq!(
        captured["tables"]["roles"],
        one(&db, "SELECT to_jsonb(count(*)) FROM t_acme.roles").await
    );
    let out = migrator(&db, &["template", "capture", "bare", "--from", "acme"]).await;
    assert!(out.status.success());
    let out = migrator(&db, &["template", "capture", "bare", "--from", "acme"]).await;
    assert_eq!(out.status.code(), Some(2), "a second template of one name");

    let out = migrator(
        &db,
        &[
            "tenant",
            "create",
            "beta",
            "--template",
            "starter",
            "--admin-email",
            "boss@beta.test",
            "--admin-password",
            "correct horse battery",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The configuration is acme's, row for row.
    for table in CONFIGURATION {
        assert_eq!(
            rows(&db, "t_acme", table).await,
            rows(&db, "t_beta", table).await,
            "{table}"
        );
    }
    // The records came as new records without links to acme's users: they
    // are journaled and synced in beta.
    assert_eq!(
        one(
            &db,
            "SELECT to_jsonb(count(*)) FROM t_beta.clients WHERE assigned_manager_id IS NULL \
                  AND custom = '{\"sector\": \"energy\"}'"
        )
        .await,
        10
    );
    assert_eq!(
        one(
            &db,
            "SELECT to_jsonb(count(*)) FROM t_beta.sync_changes WHERE model = 'clients'"
        )
        .await,
        10
    );
    assert_eq!(
        one(
            &db,
            "SELECT to_jsonb(count(*)) FROM t_beta.journal WHERE model = 'clients'"
        )
        .await,
        10
    );
    // Its administrator is its own, an Administrator.
    assert_eq!(
        one(
            &db,
            "SELECT to_jsonb(array_agg(u.email || ':' || r.name)) FROM t_beta.users u \
               JOIN t_beta.user_roles ur ON ur.user_id = u.id JOIN t_beta.roles r ON r.id = ur.role_id"
        )
        .await,
        serde_json::json!(["boss@beta.test:Administrators"])
    );
    // Without records: configuration only.
    let out = migrator(&db, &["tenant", "create", "gamma", "--template", "bare"]).await;
    assert!(out.status.success());
    assert_eq!(
        one(&db, "SELECT to_jsonb(count(*)) FROM t_gamma.clients").await,
        0
    );
    assert_eq!(
        rows(&db, "t_acme", "field_sets").await,
        rows(&db, "t_gamma", "field_sets").await
    );
    // An unknown template: refused, nothing made.
    let out = migrator(&db, &["tenant", "create", "delta", "--template", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        db.registry()
            .find_by_slug(&tenancy::Slug::parse("delta").expect("slug"))
            .await
            .expect("registry")
            .is_none()
    );
    // Listed, shown, deleted.
    let out = migrator(&db, &["template", "list", "--json"]).await;
    let names: Vec<Value> = stdout_json(&out)
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(
        names,
        [serde_json::json!("bare"), serde_json::json!("starter")]
    );
    let out = migrator(&db, &["template", "delete", "bare"]).await;
    assert!(out.status.success());
    let out = migrator(&db, &["template", "show", "bare"]).await;
    assert_eq!(out.status.code(), Some(2));
}
