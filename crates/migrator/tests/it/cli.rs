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

/// A clone holds every row of the source but its sessions and pending
/// deliveries, with webhook endpoints inactive, and goes on writing after
/// the copied ids; a source that is not current, or a taken slug, is
/// refused and leaves nothing behind.
#[tokio::test]
async fn a_clone_copies_every_table_within_the_database() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(2).await;
    assert!(migrator(&db, &["shared", "up"]).await.status.success());
    let out = migrator(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--admin-email",
            "admin@acme.test",
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
    db.db
        .execute_unprepared(
            "SET search_path = t_acme; \
             INSERT INTO clients (id, name, status) SELECT gen_random_uuid(), 'c' || g, 'lead' \
               FROM generate_series(1, 500) g; \
             UPDATE clients SET city = 'Porto' WHERE name LIKE 'c1%'; \
             DELETE FROM clients WHERE name LIKE 'c2%'; \
             INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) \
               SELECT gen_random_uuid(), id, gen_random_uuid(), 'hash', now() + interval '1 day' FROM users; \
             INSERT INTO webhook_endpoints (id, url, event_types, secret) \
               VALUES (gen_random_uuid(), 'https://example.com/h', ARRAY['*'], 'whsec_AAAA'); \
             SET search_path = public",
        )
        .await
        .expect("rows");
    let out = migrator(&db, &["tenant", "clone", "acme", "acme-copy", "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cloned = stdout_json(&out);
    assert_eq!(cloned["tables"]["clients"], 389, "{cloned}");
    let digest = |schema: &str, table: &str| {
        let sql = format!(
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') \
             FROM {schema}.{table} t"
        );
        let db = &db;
        async move {
            db.db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    sql,
                ))
                .await
                .expect("digest")
                .expect("row")
                .try_get_by_index::<String>(0)
                .expect("text")
        }
    };
    let tables: Vec<String> = db
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 't_acme' ORDER BY 1",
        ))
        .await
        .expect("tables")
        .iter()
        .map(|r| r.try_get_by_index(0).expect("name"))
        .collect();
    assert!(tables.len() > 20, "{tables:?}");
    for t in &tables {
        let (a, b) = (digest("t_acme", t).await, digest("t_acme_copy", t).await);
        match t.as_str() {
            "refresh_tokens" => assert!(b.starts_with("0:"), "{t}: {b}"),
            "webhook_endpoints" | "tenant_migrations" => {
                assert_eq!(a.split(':').next(), b.split(':').next(), "{t}")
            }
            _ => assert_eq!(a, b, "{t} differs"),
        }
    }
    // The copy writes after the copied ids, journaled; its endpoints are off.
    db.db
        .execute_unprepared(
            "SET search_path = t_acme_copy; \
             INSERT INTO clients (id, name, status) VALUES (gen_random_uuid(), 'new', 'lead'); \
             SET search_path = public",
        )
        .await
        .expect("a write to the copy");
    let active: bool = db
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT bool_or(active) FROM t_acme_copy.webhook_endpoints",
        ))
        .await
        .expect("endpoints")
        .expect("row")
        .try_get_by_index(0)
        .expect("bool");
    assert!(!active);
    // Refused: a taken slug, an unknown source; nothing is left behind.
    for args in [
        &["tenant", "clone", "acme", "acme-copy"][..],
        &["tenant", "clone", "nobody", "other"][..],
    ] {
        let out = migrator(&db, args).await;
        assert!(!out.status.success(), "{args:?}");
    }
    let out = migrator(&db, &["tenant", "list", "--json"]).await;
    assert_eq!(stdout_json(&out).as_array().map(Vec::len), Some(2));
}
