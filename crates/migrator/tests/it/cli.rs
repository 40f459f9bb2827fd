//! Lifecycle commands and their refusals of bad input.

use tenancy::testing::TestDb;

use crate::{migrator, stdout_json};

#[tokio::test]
async fn hostile_slugs_are_refused_with_exit_code_2() {
    let db = TestDb::new(1).await;
    let long = "a".repeat(300);
    for slug in [
        "a\";drop schema public;--",
        "pg_catalog",
        "pgsql",
        "public",
        "information_schema",
        "ACME",
        "acmé",
        "ab",
        long.as_str(),
    ] {
        let out = migrator(&db, &["tenant", "create", slug]).await;
        assert_eq!(out.status.code(), Some(2), "{slug}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid slug"), "{slug}: {err}");
        assert!(
            !err.contains("database") && !err.contains("syntax"),
            "{slug}: {err}"
        );
    }
    let out = migrator(&db, &["tenant", "list", "--json"]).await;
    assert_eq!(stdout_json(&out), serde_json::json!([]));
}

#[tokio::test]
async fn lifecycle_through_the_cli() {
    let db = TestDb::new(1).await;
    let out = migrator(&db, &["shared", "up"]).await;
    assert!(out.status.success(), "shared up is idempotent");

    let out = migrator(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--name",
            "Acme",
            "--domain",
            "crm.acme.io",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["status"], "active");

    let out = migrator(&db, &["tenant", "create", "acme"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let out = migrator(&db, &["migrate-tenant", "demo"]).await;
    assert_eq!(out.status.code(), Some(2), "no --create: refused");
    let out = migrator(&db, &["migrate-tenant", "demo", "--create", "--json"]).await;
    assert!(out.status.success());
    assert_eq!(stdout_json(&out)["outcome"], "migrated");
    let out = migrator(&db, &["migrate-tenant", "demo", "--create", "--json"]).await;
    assert_eq!(stdout_json(&out)["outcome"], "up_to_date");

    let out = migrator(&db, &["tenant", "suspend", "acme", "--json"]).await;
    assert_eq!(stdout_json(&out)["status"], "suspended");
    let out = migrator(&db, &["tenant", "resume", "acme", "--json"]).await;
    assert_eq!(stdout_json(&out)["status"], "active");

    let out = migrator(&db, &["tenant", "delete", "acme"]).await;
    assert_eq!(out.status.code(), Some(2), "delete needs --confirm");
    let out = migrator(&db, &["tenant", "delete", "acme", "--confirm", "demo"]).await;
    assert_eq!(out.status.code(), Some(2), "confirm must repeat the slug");
    let out = migrator(&db, &["tenant", "delete", "acme", "--confirm", "acme"]).await;
    assert!(out.status.success());

    let out = migrator(&db, &["tenant", "list", "--json"]).await;
    let list = stdout_json(&out);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["slug"], "demo");

    let out = migrator(&db, &["tenant", "suspend", "nobody"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn tenant_with_first_admin_and_operators() {
    let db = TestDb::new(1).await;
    let out = migrator(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--admin-email",
            "Boss@Acme.test",
            "--admin-password",
            "correct horse",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tenant = db
        .registry()
        .get(&tenancy::Slug::parse("acme").expect("slug"))
        .await
        .expect("tenant");
    let tx = tenancy::TenantTx::begin(&db.db, &tenant).await.expect("tx");
    let row = sea_orm::ConnectionTrait::query_one_raw(
        tx.conn(),
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT u.email, r.name FROM users u JOIN user_roles ur ON ur.user_id = u.id \
             JOIN roles r ON r.id = ur.role_id",
        ),
    )
    .await
    .expect("query")
    .expect("row");
    assert_eq!(
        row.try_get_by_index::<String>(0).expect("email"),
        "boss@acme.test"
    );
    assert_eq!(
        row.try_get_by_index::<String>(1).expect("role"),
        "Administrators"
    );
    tx.rollback().await.expect("rollback");

    // A weak password is refused before anything is created.
    let out = migrator(
        &db,
        &[
            "tenant",
            "create",
            "other",
            "--admin-email",
            "a@b.test",
            "--admin-password",
            "short",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let out = migrator(&db, &["tenant", "list", "--json"]).await;
    assert_eq!(stdout_json(&out).as_array().map(Vec::len), Some(1));

    let out = migrator(
        &db,
        &[
            "operator",
            "create",
            "ops@strata.test",
            "--password",
            "correct horse",
        ],
    )
    .await;
    assert!(out.status.success());
    let out = migrator(
        &db,
        &[
            "operator",
            "create",
            "OPS@strata.test",
            "--password",
            "correct horse",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "duplicate operator");
}

#[tokio::test]
async fn events_pause_and_resume_on_the_platform_and_per_tenant() {
    let db = TestDb::new(2).await;
    let out = migrator(&db, &["shared", "up"]).await;
    assert!(out.status.success());
    let out = migrator(&db, &["tenant", "create", "acme"]).await;
    assert!(out.status.success());
    let state = |args: &'static [&'static str]| {
        let db = &db;
        async move {
            let out = migrator(db, args).await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout_json(&out)
        }
    };
    let s = state(&["events", "status", "--json"]).await;
    assert_eq!(s["paused"], false, "{s}");
    // No tenant has endpoints yet: nothing waiting, no tenant listed.
    assert_eq!(
        (s["pending"].clone(), s["failed"].clone()),
        (0.into(), 0.into()),
        "{s}"
    );
    assert_eq!(s["tenants"], serde_json::json!([]), "{s}");
    let s = state(&["events", "pause", "--json"]).await;
    assert_eq!(s["paused"], true, "{s}");
    let s = state(&["events", "resume", "--json"]).await;
    assert_eq!(s["paused"], false, "{s}");
    let s = state(&["events", "pause", "--tenant", "acme", "--json"]).await;
    assert_eq!(
        s,
        serde_json::json!({ "paused": true, "pending": 0, "oldest_pending_secs": null, "failed": 0 })
    );
    let s = state(&["events", "status", "--tenant", "acme", "--json"]).await;
    assert_eq!(s["paused"], true, "{s}");
    let s = state(&["events", "resume", "--tenant", "acme", "--json"]).await;
    assert_eq!(s["paused"], false, "{s}");
    // The platform still runs; text for people.
    let out = migrator(&db, &["events", "status"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("platform deliveries running"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = migrator(&db, &["events", "status", "--tenant", "nobody"]).await;
    assert!(!out.status.success());
}
