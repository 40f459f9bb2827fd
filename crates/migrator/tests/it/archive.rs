//! `tenant export` and `tenant import`: a round trip keeps every table's
//! rows and checksums; a changed archive, one from a newer schema, or one
//! signed with another secret is refused and leaves nothing behind; an
//! older one is migrated forward.

use std::io::Read;

use sea_orm::ConnectionTrait;
use tenancy::archive::{ArchiveKey, Manifest};
use tenancy::migrate::{rollback_tenant, tenant_migrations};
use tenancy::testing::TestDb;
use tenancy::{Slug, TenantTx};

use crate::{migrator, stdout_json};

/// The development secret of config/default.toml.
const SECRET: &str = "development-only-archive-secret-0123456789";

async fn fill(db: &TestDb, slug: &str) {
    let tenant = db.create_tenant(slug).await;
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    tx.execute_unprepared(
        "INSERT INTO field_sets (id, model, name, label, fields) VALUES \
           (gen_random_uuid(), 'clients', 'esg', 'ESG', \
            '[{\"key\": \"sector\", \"label\": \"Sector\", \"type\": \"text\"}]'); \
         INSERT INTO clients (id, name, status, city, custom) \
           SELECT gen_random_uuid(), 'Client ' || g, 'active', \
                  CASE WHEN g % 3 = 0 THEN NULL ELSE E'Line\\tone\\nLine ''two'' \\\\ ü' END, \
                  jsonb_build_object('sector', 'energy') \
             FROM generate_series(1, 500) g; \
         INSERT INTO contacts (id, client_id, first_name) \
           SELECT gen_random_uuid(), id, 'Ann' FROM clients LIMIT 100; \
         UPDATE clients SET name = name || ' (renamed)' WHERE name LIKE '%7'; \
         DELETE FROM clients WHERE name LIKE '%9' AND id NOT IN (SELECT client_id FROM contacts);",
    )
    .await
    .expect("rows");
    tx.commit().await.expect("commit");
}

fn tables(manifest: &Manifest) -> Vec<(String, u64, String)> {
    manifest
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.rows, t.sha256.clone()))
        .collect()
}

fn manifest_of(path: &std::path::Path) -> Manifest {
    let file = std::fs::File::open(path).expect("archive");
    tenancy::archive::read_archive(&ArchiveKey::new(SECRET), file)
        .expect("a valid archive")
        .0
}

/// The archive at `from` with each entry passed through `change`.
fn rewrite(
    from: &std::path::Path,
    to: &std::path::Path,
    change: impl Fn(&str, Vec<u8>) -> Vec<u8>,
) {
    let mut input = tar::Archive::new(std::fs::File::open(from).expect("open"));
    let mut out = tar::Builder::new(std::fs::File::create(to).expect("create"));
    for entry in input.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        let data = change(&path, data);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        out.append_data(&mut header, &path, data.as_slice())
            .expect("append");
    }
    out.finish().expect("finish");
}

async fn refused(db: &TestDb, archive: &std::path::Path, slug: &str, says: &str) {
    let out = migrator(
        db,
        &[
            "tenant",
            "import",
            slug,
            "--from",
            archive.to_str().expect("path"),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(
        db.registry()
            .find_by_slug(&Slug::parse(slug).expect("slug"))
            .await
            .expect("registry")
            .is_none()
    );
    let left = db
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'strata_import_%' \
             OR nspname = 't_' || replace('"
                .to_owned()
                + slug
                + "', '-', '_')",
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        left.try_get_by_index::<i64>(0).expect("count"),
        0,
        "schemas left behind"
    );
}

#[tokio::test]
async fn export_import_round_trip_and_refusals() {
    let db = TestDb::new(2).await;
    fill(&db, "acme").await;
    let dir = std::env::temp_dir().join(format!("strata-archive-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let first = dir.join("acme.tar");
    let out = migrator(
        &db,
        &[
            "tenant",
            "export",
            "acme",
            "--out",
            first.to_str().expect("path"),
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = stdout_json(&out);
    let clients = db
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM t_acme.clients",
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("count");
    assert_eq!(exported["tables"]["clients"], clients);

    let out = migrator(
        &db,
        &[
            "tenant",
            "import",
            "acme-copy",
            "--from",
            first.to_str().expect("path"),
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = stdout_json(&out);
    assert_eq!(imported["source"], "acme");
    assert_eq!(imported["tables"]["clients"], clients);
    assert_eq!(imported["migrated"], serde_json::json!([]));

    // Exported again, the copy has the same rows with the same checksums.
    let second = dir.join("copy.tar");
    let out = migrator(
        &db,
        &[
            "tenant",
            "export",
            "acme-copy",
            "--out",
            second.to_str().expect("path"),
        ],
    )
    .await;
    assert!(out.status.success());
    let (a, b) = (manifest_of(&first), manifest_of(&second));
    assert_eq!(tables(&a), tables(&b));
    assert_eq!(a.migrations, b.migrations);

    // A changed row, a changed manifest, a file the manifest does not
    // list, or another secret: refused, nothing left behind.
    let changed = dir.join("changed.tar");
    rewrite(&first, &changed, |path, mut data| {
        if path == "tables/clients.copy" {
            let at = data.iter().position(|b| *b == b'C').expect("a C");
            data[at] = b'K';
        }
        data
    });
    refused(&db, &changed, "acme-bad", "does not match its checksum").await;
    let forged = dir.join("forged.tar");
    rewrite(&first, &forged, |path, data| {
        if path == "manifest.json" {
            // One more row claimed, the signature kept.
            let mut m: Manifest = serde_json::from_slice(&data).expect("manifest");
            for t in m.tables.iter_mut().filter(|t| t.name == "clients") {
                t.rows += 1;
            }
            serde_json::to_vec(&m).expect("json")
        } else {
            data
        }
    });
    refused(&db, &forged, "acme-bad", "signature does not match").await;
    let extra = dir.join("extra.tar");
    rewrite(&first, &extra, |_, data| data);
    {
        // Append a file the manifest does not list.
        let mut bytes = std::fs::read(&extra).expect("read");
        bytes.truncate(bytes.len() - 1024);
        let mut out = tar::Builder::new(bytes);
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        out.append_data(&mut header, "tables/evil.copy", &b"x\ty"[..])
            .expect("append");
        std::fs::write(&extra, out.into_inner().expect("tar")).expect("write");
    }
    refused(&db, &extra, "acme-bad", "which the manifest does not list").await;
    let other_key = dir.join("other.tar");
    rewrite(&first, &other_key, |path, data| {
        if path == "manifest.json" {
            let m: Manifest = serde_json::from_slice(&data).expect("manifest");
            let m = ArchiveKey::new("another-installation-secret-0123456789abcdef")
                .sign(m)
                .expect("sign");
            serde_json::to_vec(&m).expect("json")
        } else {
            data
        }
    });
    refused(&db, &other_key, "acme-bad", "signature does not match").await;

    // From a newer schema: refused, naming the unknown migration.
    let newer = dir.join("newer.tar");
    rewrite(&first, &newer, |path, data| {
        if path == "manifest.json" {
            let mut m: Manifest = serde_json::from_slice(&data).expect("manifest");
            m.migrations.push("m29991231_999999_from_the_future".into());
            let m = ArchiveKey::new(SECRET).sign(m).expect("sign");
            serde_json::to_vec(&m).expect("json")
        } else {
            data
        }
    });
    refused(&db, &newer, "acme-bad", "m29991231_999999_from_the_future").await;

    // From an older schema: imported and migrated forward.
    let acme = db
        .registry()
        .get(&Slug::parse("acme").expect("slug"))
        .await
        .expect("acme");
    let set = tenant_migrations();
    rollback_tenant(&db.db, &acme, &set, 1)
        .await
        .expect("rollback");
    let older = dir.join("older.tar");
    let out = migrator(
        &db,
        &[
            "tenant",
            "export",
            "acme",
            "--out",
            older.to_str().expect("path"),
        ],
    )
    .await;
    assert!(out.status.success());
    let out = migrator(
        &db,
        &[
            "tenant",
            "import",
            "acme-old",
            "--from",
            older.to_str().expect("path"),
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = set
        .last()
        .map(|m| m.name().to_owned())
        .expect("a migration");
    assert_eq!(stdout_json(&out)["migrated"], serde_json::json!([last]));
    let out = migrator(
        &db,
        &["tenants", "status", "--tenant", "acme-old", "--json"],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"pending\": []"));
    let _ = std::fs::remove_dir_all(&dir);
}
