//! Tenant templates: a tenant's configuration captured to provision new
//! tenants from, atomically with the rest of provisioning.
//!
//! A template holds, per table, the columns it was captured with and its
//! rows as JSON: the roles, the sync permission matrix and row filters,
//! the journal's retention, the event types and the custom field sets;
//! with `include_records`, also the CRM records (branches, clients,
//! contacts, tasks, notes) as sample data, without their links to users
//! (a new tenant has other users). Users, sessions, devices, history and
//! webhooks are never captured.
//!
//! Applied to a new tenant (at the current version, so possibly newer than
//! the template), configuration rows replace the ones migrations seeded;
//! records are inserted with the tenant's triggers on, so they are
//! journaled and synced as new records. Columns the template lacks take
//! their defaults; columns the schema lacks are ignored.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::clone::columns;
use crate::error::Error;
use crate::registry::Registry;
use crate::slug::{SchemaName, Slug};
use crate::sql::stmt;

/// Configuration tables, in an order where referenced tables come first.
const CONFIGURATION: &[&str] = &[
    "roles",
    "sync_permissions",
    "sync_filters",
    "journal_settings",
    "event_types",
    "field_sets",
];
/// Record tables, referenced first.
const RECORDS: &[&str] = &["branches", "clients", "contacts", "tasks", "notes"];
/// Columns of records that point at users: left empty in a template.
const USER_LINKS: &[&str] = &[
    "assigned_manager_id",
    "assignee_id",
    "created_by",
    "author_id",
];

/// A template as operators see it (without its content).
#[derive(Debug, Clone, Serialize, FromQueryResult, utoipa::ToSchema)]
pub struct Template {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The tenant it was captured from.
    pub source: String,
    pub include_records: bool,
    pub migrations: Vec<String>,
    /// Rows per table.
    #[schema(value_type = Object)]
    pub tables: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, description, source, include_records, migrations, \
    (SELECT coalesce(jsonb_object_agg(k, jsonb_array_length(v->'rows')), '{}') \
       FROM jsonb_each(content) e(k, v)) AS tables, created_by, created_at";

/// A template's name: 1 to 63 of `a-z`, digits and `-`, not starting with `-`.
fn checked_name(name: &str) -> Result<&str, Error> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(Error::InvalidTemplate(
            "a name is 1 to 63 of a-z, digits and -".into(),
        ))
    }
}

impl Registry {
    /// Captures tenant `source`'s configuration (and records, with
    /// `include_records`) as template `name`, from one snapshot.
    pub async fn capture_template(
        &self,
        name: &str,
        description: &str,
        source: &Slug,
        include_records: bool,
        by: &str,
    ) -> Result<Template, Error> {
        use sea_orm::TransactionTrait;
        let name = checked_name(name)?;
        if description.chars().count() > 1_000 || description.contains('\0') {
            return Err(Error::InvalidTemplate(
                "a description is at most 1,000 characters".into(),
            ));
        }
        let tenant = self.get(source).await?;
        let schema = tenant.schema();
        let txn = self
            .db()
            .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), None)
            .await?;
        let migrations: Vec<String> = txn
            .query_all_raw(stmt(
                &format!(
                    "SELECT version FROM {}.tenant_migrations ORDER BY version",
                    schema.quoted()
                ),
                [],
            ))
            .await?
            .iter()
            .map(|r| r.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?;
        let mut content = serde_json::Map::new();
        let tables = CONFIGURATION
            .iter()
            .chain(if include_records { RECORDS } else { &[] });
        for table in tables {
            let cols = columns(&txn, schema, table).await?;
            if cols.is_empty() {
                continue; // not at this version
            }
            let unlinked: Vec<String> = cols
                .iter()
                .map(|c| {
                    if USER_LINKS.contains(&c.as_str()) {
                        format!("NULL AS {c}")
                    } else {
                        c.clone()
                    }
                })
                .collect();
            let rows: Value = txn
                .query_one_raw(stmt(
                    &format!(
                        "SELECT coalesce(jsonb_agg(to_jsonb(x)), '[]') FROM \
                           (SELECT {} FROM {}.{table} t) x",
                        unlinked.join(", "),
                        schema.quoted()
                    ),
                    [],
                ))
                .await?
                .map(|r| r.try_get_by_index::<Value>(0))
                .transpose()?
                .unwrap_or(Value::Array(vec![]));
            content.insert(
                (*table).to_owned(),
                serde_json::json!({ "columns": cols, "rows": rows }),
            );
        }
        let template = Template::find_by_statement(stmt(
            &format!(
                "INSERT INTO public.platform_templates \
                   (id, name, description, source, include_records, migrations, content, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
            ),
            [
                Uuid::now_v7().into(),
                name.into(),
                description.into(),
                source.as_str().into(),
                include_records.into(),
                migrations.into(),
                Value::Object(content).into(),
                by.into(),
            ],
        ))
        .one(&txn)
        .await?
        .ok_or_else(|| Error::TemplateExists(name.to_owned()))?;
        txn.commit().await?;
        Ok(template)
    }
}

/// Every template, by name.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<Template>, Error> {
    Ok(Template::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM public.platform_templates ORDER BY name"),
        [],
    ))
    .all(db)
    .await?)
}

/// Template `name`.
pub async fn get(db: &impl ConnectionTrait, name: &str) -> Result<Template, Error> {
    Template::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM public.platform_templates WHERE name = $1"),
        [name.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(|| Error::TemplateNotFound(name.to_owned()))
}

/// Deletes template `name` (tenants made from it are not touched).
pub async fn delete(db: &DatabaseConnection, name: &str) -> Result<(), Error> {
    let res = db
        .execute_raw(stmt(
            "DELETE FROM public.platform_templates WHERE name = $1",
            [name.into()],
        ))
        .await?;
    if res.rows_affected() == 0 {
        return Err(Error::TemplateNotFound(name.to_owned()));
    }
    Ok(())
}

/// Applies template `name` to the new tenant's `schema` inside its
/// provisioning transaction.
pub(crate) async fn apply(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    name: &str,
) -> Result<(), Error> {
    let row = txn
        .query_one_raw(stmt(
            "SELECT content FROM public.platform_templates WHERE name = $1",
            [name.into()],
        ))
        .await?
        .ok_or_else(|| Error::TemplateNotFound(name.to_owned()))?;
    let content: Value = row.try_get_by_index(0)?;
    let q = schema.quoted();
    // Seeded configuration gives way to the template's (in reverse
    // reference order: a table goes before what it references).
    let present: Vec<&str> = CONFIGURATION
        .iter()
        .copied()
        .filter(|t| content.get(*t).is_some())
        .collect();
    if !present.is_empty() {
        let list: Vec<String> = present.iter().map(|t| format!("{q}.{t}")).collect();
        txn.execute_unprepared(&format!("TRUNCATE {} CASCADE", list.join(", ")))
            .await?;
    }
    for table in CONFIGURATION.iter().chain(RECORDS) {
        let Some(entry) = content.get(*table) else {
            continue;
        };
        let given: Vec<String> = entry["columns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let have = columns(txn, schema, table).await?;
        let cols: Vec<&String> = have.iter().filter(|c| given.contains(c)).collect();
        if cols.is_empty() {
            continue;
        }
        let list: Vec<&str> = cols.iter().map(|c| c.as_str()).collect();
        let configuration = CONFIGURATION.contains(table);
        if configuration {
            txn.execute_unprepared(&format!("ALTER TABLE {q}.{table} DISABLE TRIGGER USER"))
                .await?;
        }
        txn.execute_raw(stmt(
            &format!(
                "INSERT INTO {q}.{table} ({cols}) OVERRIDING SYSTEM VALUE \
                 SELECT {cols} FROM jsonb_populate_recordset(NULL::{q}.{table}, $1)",
                cols = list.join(", ")
            ),
            [entry["rows"].clone().into()],
        ))
        .await?;
        if configuration {
            txn.execute_unprepared(&format!("ALTER TABLE {q}.{table} ENABLE TRIGGER USER"))
                .await?;
        }
    }
    crate::clone::continue_identities(txn, schema).await?;
    Ok(())
}
