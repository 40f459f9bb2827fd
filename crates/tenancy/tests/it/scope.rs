//! Tenant transactions reach the tenant's schema only, and leave nothing on
//! the pooled connection.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::testing::TestDb;
use tenancy::{Error, TenantTx};

async fn search_path(conn: &impl ConnectionTrait) -> String {
    conn.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT current_setting('search_path')",
    ))
    .await
    .expect("query")
    .expect("row")
    .try_get_by_index(0)
    .expect("text")
}

#[tokio::test]
async fn search_path_is_local_to_the_transaction() {
    // One pooled connection: whatever a transaction leaves on it, the next
    // user sees.
    let db = TestDb::new(1).await;
    let a = db.create_tenant("alpha").await;
    let b = db.create_tenant("bravo").await;
    let before = search_path(&db.db).await;

    let tx = TenantTx::begin(&db.db, &a).await.expect("begin");
    assert_eq!(search_path(tx.conn()).await, "\"t_alpha\", public");
    tx.conn()
        .execute_unprepared("INSERT INTO branches (id, name) VALUES (gen_random_uuid(), 'a')")
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(search_path(&db.db).await, before);

    let tx = TenantTx::begin(&db.db, &b).await.expect("begin");
    let n: i64 = tx
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM branches",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get_by_index(0)
        .expect("i64");
    assert_eq!(n, 0, "bravo must not see alpha's branch");
    tx.rollback().await.expect("rollback");
    assert_eq!(search_path(&db.db).await, before);
}

#[tokio::test]
async fn a_missing_schema_is_an_error_not_a_fall_through() {
    let db = TestDb::new(2).await;
    let t = db.create_tenant("vanished").await;
    db.db
        .execute_unprepared("DROP SCHEMA t_vanished CASCADE")
        .await
        .expect("drop");
    let err = TenantTx::begin(&db.db, &t).await.err().expect("must fail");
    assert!(matches!(err, Error::SchemaMissing(_)), "{err}");
}

/// Commits `sql` in a transaction of `tenant`'s, inside `hook`'s scope.
async fn commit_in_scope(db: &TestDb, tenant: &tenancy::Tenant, sql: &str, commit: bool) {
    let tx = TenantTx::begin(&db.db, tenant).await.expect("begin");
    tx.conn().execute_unprepared(sql).await.expect("write");
    if commit {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
}

#[tokio::test]
async fn a_commit_tells_the_writing_server_what_it_changed() {
    use std::sync::{Arc, Mutex};
    use tenancy::scope::{Changed, OnCommit, on_commit};

    let db = TestDb::new(2).await;
    let tenant = db.create_tenant("acme").await;
    let schema = tenant.schema().as_str().to_owned();
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    commit_in_scope(
        &db,
        &tenant,
        &format!(
            "INSERT INTO users (id, email, full_name) VALUES \
             ('{a}', 'a@acme.test', 'A'), ('{b}', 'b@acme.test', 'B')"
        ),
        true,
    )
    .await;
    let seen: Arc<Mutex<Vec<(String, Changed)>>> = Arc::default();
    let hook: OnCommit = {
        let seen = Arc::clone(&seen);
        Arc::new(move |s, c| {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((s.as_str().to_owned(), c.clone()))
        })
    };
    let grant = |user: uuid::Uuid| {
        format!(
            "INSERT INTO user_roles (user_id, role_id) \
             SELECT '{user}', id FROM roles WHERE name = 'Sales'"
        )
    };
    let mut told = Vec::new();
    on_commit(hook, async {
        // A read, and a write of nothing servers keep: not told.
        commit_in_scope(&db, &tenant, "SELECT 1", true).await;
        commit_in_scope(
            &db,
            &tenant,
            "UPDATE users SET full_name = 'Ann' WHERE id IS NULL",
            true,
        )
        .await;
        told.push(seen.lock().map(|s| s.len()).unwrap_or(99));
        // A write of what servers keep nothing of: told that it wrote.
        commit_in_scope(
            &db,
            &tenant,
            "INSERT INTO clients (id, name) VALUES (gen_random_uuid(), 'Client')",
            true,
        )
        .await;
        // One user's standing, then two users' (`*`).
        commit_in_scope(&db, &tenant, &grant(a), true).await;
        commit_in_scope(&db, &tenant, &grant(b), true).await;
        commit_in_scope(
            &db,
            &tenant,
            &format!("DELETE FROM user_roles WHERE user_id IN ('{a}', '{b}')"),
            true,
        )
        .await;
        // Rules, and roles (everyone's standing).
        commit_in_scope(
            &db,
            &tenant,
            "UPDATE sync_permissions SET can_push = can_push",
            true,
        )
        .await;
        commit_in_scope(&db, &tenant, "UPDATE roles SET name = name", true).await;
        // Rolled back: nothing to drop.
        commit_in_scope(&db, &tenant, "UPDATE roles SET name = name", false).await;
        // Aborted by an error: the commit is a rollback, reported as
        // outside a scope, and tells nothing.
        let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
        tx.conn()
            .execute_unprepared("UPDATE roles SET name = name")
            .await
            .expect("write");
        assert!(tx.conn().execute_unprepared("SELECT 1/0").await.is_err());
        tx.commit().await.expect("an aborted transaction ends");
    })
    .await;
    // Outside the scope, commits tell no one.
    commit_in_scope(&db, &tenant, "UPDATE roles SET name = name", true).await;

    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let standing = |who: &str| Changed {
        rules: false,
        standing: Some(who.to_owned()),
        wrote: true,
    };
    assert_eq!(told, vec![0]);
    assert_eq!(
        seen,
        vec![
            (
                schema.clone(),
                Changed {
                    wrote: true,
                    ..Changed::default()
                }
            ),
            (schema.clone(), standing(&a.to_string())),
            (schema.clone(), standing(&b.to_string())),
            (schema.clone(), standing("*")),
            (
                schema.clone(),
                Changed {
                    rules: true,
                    standing: None,
                    wrote: true,
                }
            ),
            (
                schema.clone(),
                Changed {
                    rules: true,
                    standing: Some("*".into()),
                    wrote: true,
                }
            ),
        ]
    );
}
