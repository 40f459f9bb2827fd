//! Tenant export archives: a portable copy of one tenant, and importing
//! one as a new tenant.
//!
//! An archive is a tar file of `tables/<table>.copy` (the table's rows in
//! PostgreSQL's COPY text format, ordered by primary key) and, last,
//! `manifest.json`: the format and its version, the tenant, the migration
//! versions its schema was at, and per table its columns (name and type),
//! row count and SHA-256. The manifest is signed with HMAC-SHA256 under
//! `archive.secret`; an import checks the signature and every file's
//! checksum and count before it writes anything, refuses an archive from a
//! newer schema, migrates an older one forward, and is atomic.
//!
//! Not exported, like a clone: sessions (`refresh_tokens`) and pending
//! webhook deliveries; imported webhook endpoints are inactive.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use sea_orm::sqlx::{self, Acquire, Row};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clone::{continue_identities, copy_tables};
use crate::error::Error;
use crate::migrate::{apply_pending, tenant_migrations};
use crate::provision::{NewTenant, provision};
use crate::registry::{Registry, Tenant, TenantStatus};
use crate::slug::Slug;
use crate::sql::stmt;

/// What `manifest.json` says its format is.
pub const FORMAT: &str = "strata-tenant-archive";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Tables an archive leaves out: sessions, pending deliveries, and the
/// migration record (the manifest carries the versions).
const NOT_EXPORTED: &[&str] = &["refresh_tokens", "webhook_deliveries", "tenant_migrations"];
/// Largest archive entry read into memory.
const MAX_ENTRY: u64 = 4 << 30;

/// One column of an exported table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// As `format_type` writes it, e.g. `timestamp with time zone`.
    #[serde(rename = "type")]
    pub sql_type: String,
}

/// One exported table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub file: String,
    pub rows: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub columns: Vec<Column>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub tenant: String,
    pub display_name: String,
    pub exported_at: DateTime<Utc>,
    /// The tenant migrations the schema had, oldest first.
    pub migrations: Vec<String>,
    /// In an order where referenced tables come first.
    pub tables: Vec<TableEntry>,
    /// HMAC-SHA256 (hex) of this manifest with `signature` empty.
    #[serde(default)]
    pub signature: String,
}

/// The key archives are signed with (`archive.secret`).
#[derive(Clone)]
pub struct ArchiveKey(Vec<u8>);

impl ArchiveKey {
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, manifest: &Manifest) -> Result<Hmac<Sha256>, Error> {
        let unsigned = Manifest {
            signature: String::new(),
            ..manifest.clone()
        };
        let bytes = serde_json::to_vec(&unsigned).map_err(|e| Error::Archive(e.to_string()))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).map_err(|e| Error::Archive(e.to_string()))?;
        mac.update(&bytes);
        Ok(mac)
    }

    /// `manifest` with its signature set.
    pub fn sign(&self, mut manifest: Manifest) -> Result<Manifest, Error> {
        manifest.signature = hex::encode(self.mac(&manifest)?.finalize().into_bytes());
        Ok(manifest)
    }

    fn verify(&self, manifest: &Manifest) -> Result<(), Error> {
        let given = hex::decode(&manifest.signature)
            .map_err(|_| Error::Archive("the manifest's signature is not hex".into()))?;
        self.mac(manifest)?.verify_slice(&given).map_err(|_| {
            Error::Archive(
                "the manifest's signature does not match: the archive was changed, or made \
                 with another archive.secret"
                    .into(),
            )
        })
    }
}

fn sqlx_error(e: sqlx::Error) -> Error {
    Error::Database(sea_orm::DbErr::Custom(e.to_string()))
}

fn io_error(e: std::io::Error) -> Error {
    Error::Archive(e.to_string())
}

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub tenant: String,
    pub tables: BTreeMap<String, u64>,
    pub rows: u64,
    pub bytes: u64,
}

/// What an import made.
#[derive(Debug, Serialize)]
pub struct Imported {
    pub tenant: String,
    pub source: String,
    pub tables: BTreeMap<String, u64>,
    pub rows: u64,
    /// Migrations applied after the rows were loaded (an older archive).
    pub migrated: Vec<String>,
}

/// A name PostgreSQL takes unquoted: lower-case letters, digits, `_`.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A type as `format_type` writes it (letters, digits, spaces, `()[],_`).
fn plain_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || " ()[],_".contains(c))
}

impl Registry {
    /// Writes tenant `slug` to `out` as an archive signed with `key`, from
    /// one snapshot (no migration runs on it meanwhile).
    pub async fn export_tenant(
        &self,
        slug: &Slug,
        key: &ArchiveKey,
        out: impl Write,
    ) -> Result<Exported, Error> {
        let tenant = self.get(slug).await?;
        let schema = tenant.schema().as_str().to_owned();
        let pool = self.db().get_postgres_connection_pool();
        let mut conn = pool.acquire().await.map_err(sqlx_error)?;
        let mut tx = conn.begin().await.map_err(sqlx_error)?;
        sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1, hashtext($2))")
            .bind(crate::sql::SCHEMA_LOCK_CLASS)
            .bind(&schema)
            .execute(&mut *tx)
            .await
            .map_err(sqlx_error)?;
        let migrations: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM {}.tenant_migrations ORDER BY version",
            tenant.schema().quoted()
        )))
        .fetch_all(&mut *tx)
        .await
        .map_err(sqlx_error)?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(sqlx_error)?;
        let order = crate::clone::tables_in_order(self.db(), tenant.schema()).await?;
        let mut tar = tar::Builder::new(out);
        let mut entries = Vec::new();
        let mut bytes = 0u64;
        for table in order.iter().filter(|t| !NOT_EXPORTED.contains(&t.as_str())) {
            let columns: Vec<Column> = sqlx::query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 \
                    AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
            )
            .bind(&schema)
            .bind(table)
            .fetch_all(&mut *tx)
            .await
            .map_err(sqlx_error)?
            .iter()
            .map(|r| {
                Ok(Column {
                    name: r.try_get(0)?,
                    sql_type: r.try_get(1)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(sqlx_error)?;
            let key_columns: Vec<String> = sqlx::query(
                "SELECT a.attname::text FROM pg_index i \
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                  WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass \
                    AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            )
            .bind(&schema)
            .bind(table)
            .fetch_all(&mut *tx)
            .await
            .map_err(sqlx_error)?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(sqlx_error)?;
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let order_by = if key_columns.is_empty() {
                names.join(", ")
            } else {
                key_columns.join(", ")
            };
            let sql = format!(
                "COPY (SELECT {cols} FROM {schema}.{table} ORDER BY {order_by}) TO STDOUT",
                cols = names.join(", "),
                schema = tenant.schema().quoted(),
            );
            let mut data = Vec::new();
            let mut stream = tx.copy_out_raw(&sql).await.map_err(sqlx_error)?;
            while let Some(chunk) = stream.try_next().await.map_err(sqlx_error)? {
                data.extend_from_slice(&chunk);
            }
            drop(stream);
            let rows = data.iter().filter(|b| **b == b'\n').count() as u64;
            let file = format!("tables/{table}.copy");
            append(&mut tar, &file, &data)?;
            bytes += data.len() as u64;
            entries.push(TableEntry {
                name: table.clone(),
                file,
                rows,
                sha256: hex::encode(Sha256::digest(&data)),
                columns,
            });
        }
        tx.commit().await.map_err(sqlx_error)?;
        let manifest = key.sign(Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            tenant: tenant.slug().as_str().to_owned(),
            display_name: tenant.display_name().to_owned(),
            exported_at: Utc::now(),
            migrations,
            tables: entries.clone(),
            signature: String::new(),
        })?;
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Archive(e.to_string()))?;
        append(&mut tar, "manifest.json", &json)?;
        tar.into_inner()
            .map_err(io_error)?
            .flush()
            .map_err(io_error)?;
        Ok(Exported {
            tenant: tenant.slug().as_str().to_owned(),
            rows: entries.iter().map(|e| e.rows).sum(),
            tables: entries.into_iter().map(|e| (e.name, e.rows)).collect(),
            bytes,
        })
    }

    /// Imports the archive in `input` as tenant `new`: checks it whole
    /// first (signature, checksums, counts, columns, versions), loads the
    /// rows with COPY into a staging schema, then in one transaction
    /// provisions the tenant at the archive's version, copies the rows in,
    /// migrates it forward and drops the staging schema.
    pub async fn import_tenant(
        &self,
        new: &NewTenant,
        key: &ArchiveKey,
        input: impl Read,
    ) -> Result<Imported, Error> {
        let (manifest, files) = read_archive(key, input)?;
        let known = tenant_migrations();
        let names: Vec<&str> = known.iter().map(|m| m.name()).collect();
        let newer: Vec<String> = manifest
            .migrations
            .iter()
            .filter(|v| !names.contains(&v.as_str()))
            .cloned()
            .collect();
        if !newer.is_empty() {
            return Err(Error::ArchiveNewer(newer));
        }
        let at = manifest.migrations.len();
        if names[..at]
            != manifest
                .migrations
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()[..]
        {
            return Err(Error::Archive(
                "its migrations are not a prefix of this build's: it comes from another \
                 line of versions"
                    .into(),
            ));
        }
        let staging = format!("strata_import_{}", uuid::Uuid::new_v4().simple());
        let loaded = self.stage(&staging, &manifest, &files).await;
        let result = match loaded {
            Ok(()) => {
                self.finish_import(new, &manifest, &staging, &known, at)
                    .await
            }
            Err(e) => Err(e),
        };
        // The staging schema goes with the import's transaction on success;
        // after a failure, here.
        if result.is_err() {
            let _ = self
                .db()
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {staging} CASCADE"))
                .await;
        }
        result
    }

    /// Creates schema `staging` with the archive's tables and COPYs the
    /// rows in, checking each table's count.
    async fn stage(
        &self,
        staging: &str,
        manifest: &Manifest,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Error> {
        let pool = self.db().get_postgres_connection_pool();
        let mut conn = pool.acquire().await.map_err(sqlx_error)?;
        let mut tx = conn.begin().await.map_err(sqlx_error)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {staging}")))
            .execute(&mut *tx)
            .await
            .map_err(sqlx_error)?;
        for t in &manifest.tables {
            let cols: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.sql_type))
                .collect();
            // Names and types were checked by `read_archive`.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE UNLOGGED TABLE {staging}.{} ({})",
                t.name,
                cols.join(", ")
            )))
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::Archive(format!("table {}: {e}", t.name)))?;
            let data = files
                .get(&t.file)
                .ok_or_else(|| Error::Archive(format!("{} is missing", t.file)))?;
            let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY {staging}.{} ({}) FROM STDIN",
                    t.name,
                    names.join(", ")
                ))
                .await
                .map_err(sqlx_error)?;
            copy.send(data.as_slice())
                .await
                .map_err(|e| Error::Archive(format!("{}: {e}", t.file)))?;
            let rows = copy
                .finish()
                .await
                .map_err(|e| Error::Archive(format!("{}: {e}", t.file)))?;
            if rows != t.rows {
                return Err(Error::Archive(format!(
                    "{} holds {rows} rows, the manifest says {}",
                    t.file, t.rows
                )));
            }
        }
        tx.commit().await.map_err(sqlx_error)?;
        Ok(())
    }

    async fn finish_import(
        &self,
        new: &NewTenant,
        manifest: &Manifest,
        staging: &str,
        known: &[Box<dyn sea_orm_migration::MigrationTrait>],
        at: usize,
    ) -> Result<Imported, Error> {
        let txn = self.ddl().begin().await?;
        let (row, schema) = provision(&txn, new, &known[..at]).await?;
        // The archive's tables must be the new schema's, column for column.
        let have = crate::clone::tables_in_order(&txn, &schema).await?;
        let have: BTreeSet<&str> = have
            .iter()
            .map(String::as_str)
            .filter(|t| !NOT_EXPORTED.contains(t))
            .collect();
        let given: BTreeSet<&str> = manifest.tables.iter().map(|t| t.name.as_str()).collect();
        if have != given {
            return Err(Error::Archive(format!(
                "its tables are not those of a schema at its version (missing: {:?}, extra: {:?})",
                have.difference(&given).collect::<Vec<_>>(),
                given.difference(&have).collect::<Vec<_>>()
            )));
        }
        let dst = schema.quoted();
        let all: Vec<String> = crate::clone::tables_in_order(&txn, &schema)
            .await?
            .into_iter()
            .filter(|t| t != "tenant_migrations")
            .map(|t| format!("{dst}.{t}"))
            .collect();
        txn.execute_unprepared(&format!("TRUNCATE {}", all.join(", ")))
            .await?;
        let plan: Vec<(String, Vec<String>)> = manifest
            .tables
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.columns.iter().map(|c| c.name.clone()).collect(),
                )
            })
            .collect();
        let tables = copy_tables(&txn, staging, &dst, &plan).await?;
        continue_identities(&txn, &schema).await?;
        let migrated = apply_pending(&txn, &schema, known).await?;
        txn.execute_unprepared(&format!("DROP SCHEMA {staging} CASCADE"))
            .await?;
        let sql = format!(
            "UPDATE public.tenants t SET status = $2, updated_at = now() \
             WHERE t.id = $1 RETURNING {}",
            crate::registry::TENANT_COLUMNS
        );
        let row = crate::registry::TenantRow::find_by_statement_one(
            &txn,
            stmt(&sql, [row.id.into(), TenantStatus::Active.as_str().into()]),
        )
        .await?;
        txn.commit().await?;
        let tenant = Tenant::try_from(row)?;
        self.events().tenant_changed(tenant.id()).await;
        Ok(Imported {
            tenant: tenant.slug().as_str().to_owned(),
            source: manifest.tenant.clone(),
            rows: tables.values().sum(),
            tables,
            migrated,
        })
    }
}

fn append(tar: &mut tar::Builder<impl Write>, path: &str, data: &[u8]) -> Result<(), Error> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, data).map_err(io_error)
}

/// Reads and checks a whole archive: the manifest's format and signature,
/// every name in it, and that the files are exactly those it lists, with
/// their checksums.
pub fn read_archive(
    key: &ArchiveKey,
    input: impl Read,
) -> Result<(Manifest, BTreeMap<String, Vec<u8>>), Error> {
    let mut archive = tar::Archive::new(input);
    let mut files = BTreeMap::new();
    let mut manifest = None;
    for entry in archive.entries().map_err(io_error)? {
        let mut entry = entry.map_err(io_error)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(Error::Archive("it holds something other than files".into()));
        }
        if entry.size() > MAX_ENTRY {
            return Err(Error::Archive("it holds a file too large".into()));
        }
        let path = entry
            .path()
            .map_err(io_error)?
            .to_str()
            .ok_or_else(|| Error::Archive("it holds a file name that is not UTF-8".into()))?
            .to_owned();
        let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry.read_to_end(&mut data).map_err(io_error)?;
        if path == "manifest.json" {
            manifest = Some(
                serde_json::from_slice::<Manifest>(&data)
                    .map_err(|e| Error::Archive(format!("manifest.json: {e}")))?,
            );
        } else if files.insert(path.clone(), data).is_some() {
            return Err(Error::Archive(format!("it holds {path} twice")));
        }
    }
    let manifest = manifest.ok_or_else(|| Error::Archive("it has no manifest.json".into()))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(Error::Archive(format!(
            "it is format {} version {}; this build reads {FORMAT} version {FORMAT_VERSION}",
            manifest.format, manifest.format_version
        )));
    }
    key.verify(&manifest)?;
    let listed: BTreeSet<&str> = manifest.tables.iter().map(|t| t.file.as_str()).collect();
    for path in files.keys() {
        if !listed.contains(path.as_str()) {
            return Err(Error::Archive(format!(
                "it holds {path}, which the manifest does not list"
            )));
        }
    }
    for t in &manifest.tables {
        let names_ok = plain_name(&t.name)
            && t.file == format!("tables/{}.copy", t.name)
            && !t.columns.is_empty()
            && t.columns
                .iter()
                .all(|c| plain_name(&c.name) && plain_type(&c.sql_type));
        if !names_ok {
            return Err(Error::Archive(format!(
                "table {:?} is not a table of Strata",
                t.name
            )));
        }
        let data = files
            .get(&t.file)
            .ok_or_else(|| Error::Archive(format!("{} is missing", t.file)))?;
        if hex::encode(Sha256::digest(data)) != t.sha256 {
            return Err(Error::Archive(format!(
                "{} does not match its checksum: the archive was changed",
                t.file
            )));
        }
    }
    Ok((manifest, files))
}
