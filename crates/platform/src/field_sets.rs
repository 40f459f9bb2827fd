//! Platform field sets: the field sets operators author once and
//! distribute to tenants. Each edit bumps `version`; a tenant's copy
//! remembers the version (and definitions) it was last given.

use chrono::{DateTime, Utc};
use domain::custom::merge::PlatformSet;
use domain::custom::{Definition, parse_definitions, sets::model_of};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::Serialize;
use serde_json::Value;
use tenancy::stmt;
use uuid::Uuid;

use crate::error::Error;

/// A platform field set as operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldSet {
    pub id: Uuid,
    pub model: String,
    pub name: String,
    pub label: String,
    pub version: i32,
    pub fields: Vec<Definition>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FieldSet {
    /// The set as distributed: this version, whole.
    pub fn as_distributed(&self) -> PlatformSet {
        PlatformSet {
            id: self.id,
            version: self.version,
            model: self.model.clone(),
            name: self.name.clone(),
            label: self.label.clone(),
            fields: self.fields.clone(),
        }
    }
}

#[derive(FromQueryResult)]
struct Row {
    id: Uuid,
    model: String,
    name: String,
    label: String,
    version: i32,
    fields: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for FieldSet {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Self {
            fields: serde_json::from_value(r.fields).map_err(|e| {
                Error::Database(sea_orm::DbErr::Custom(format!(
                    "platform_field_sets.fields: {e}"
                )))
            })?,
            id: r.id,
            model: r.model,
            name: r.name,
            label: r.label,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, model, name, label, version, fields, created_at, updated_at";

/// What an operator writes.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// `clients`, `contacts` or `tasks`.
    pub model: String,
    pub name: String,
    pub label: String,
    #[schema(value_type = Vec<Definition>)]
    pub fields: Value,
}

fn checked(draft: &Draft) -> Result<(String, String, Value), Error> {
    let mut errors = domain::FieldErrors::new();
    if let Err(domain::store::StoreError::Invalid(e)) = model_of(&draft.model) {
        errors.errors.extend(e.errors);
    }
    let name = errors.check("name", domain::validation::text(&draft.name, 1, 100));
    let label = errors.check("label", domain::validation::text(&draft.label, 1, 200));
    let fields = match parse_definitions(&draft.fields) {
        Ok(f) => serde_json::to_value(f).ok(),
        Err(e) => {
            errors.errors.extend(e.errors);
            None
        }
    };
    match (name, label, fields) {
        (Some(n), Some(l), Some(f)) if errors.is_empty() => Ok((n, l, f)),
        _ => Err(Error::Invalid(errors)),
    }
}

fn taken(e: sea_orm::DbErr) -> Error {
    match tenancy::error::sqlstate(&e).as_deref() {
        Some("23505") => {
            Error::Conflict("a platform field set of this model and name exists".into())
        }
        _ => e.into(),
    }
}

/// Every platform field set, by model and name.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<FieldSet>, Error> {
    Row::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM public.platform_field_sets ORDER BY model, name"),
        [],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(FieldSet::try_from)
    .collect()
}

/// One platform field set.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<FieldSet, Error> {
    Row::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM public.platform_field_sets WHERE id = $1"),
        [id.into()],
    ))
    .one(db)
    .await?
    .ok_or(Error::NotFound("platform field set"))?
    .try_into()
}

/// Authors a new platform field set (version 1).
pub async fn create(db: &DatabaseConnection, draft: &Draft) -> Result<FieldSet, Error> {
    let (name, label, fields) = checked(draft)?;
    Row::find_by_statement(stmt(
        &format!(
            "INSERT INTO public.platform_field_sets (id, model, name, label, fields) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        ),
        [
            Uuid::now_v7().into(),
            draft.model.clone().into(),
            name.into(),
            label.into(),
            fields.into(),
        ],
    ))
    .one(db)
    .await
    .map_err(taken)?
    .ok_or(Error::NotFound("platform field set"))?
    .try_into()
}

/// Replaces set `id` if it is still at `version`; the new version is
/// `version + 1`. The model cannot change.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    version: i32,
    draft: &Draft,
) -> Result<FieldSet, Error> {
    let (name, label, fields) = checked(draft)?;
    let current = get(db, id).await?;
    if current.model != draft.model {
        return Err(Error::field("model", "cannot be changed"));
    }
    let row = Row::find_by_statement(stmt(
        &format!(
            "UPDATE public.platform_field_sets \
                SET name = $3, label = $4, fields = $5, version = version + 1, updated_at = now() \
              WHERE id = $1 AND version = $2 RETURNING {COLUMNS}"
        ),
        [
            id.into(),
            version.into(),
            name.into(),
            label.into(),
            fields.into(),
        ],
    ))
    .one(db)
    .await
    .map_err(taken)?;
    match row {
        Some(r) => r.try_into(),
        None => Err(Error::Conflict(format!(
            "the field set changed since version {version}; it is now at version {}",
            get(db, id).await?.version
        ))),
    }
}

/// Deletes platform set `id`. Tenants keep their copies, as local sets.
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), Error> {
    let res = db
        .execute_raw(stmt(
            "DELETE FROM public.platform_field_sets WHERE id = $1",
            [id.into()],
        ))
        .await?;
    if res.rows_affected() == 0 {
        return Err(Error::NotFound("platform field set"));
    }
    Ok(())
}
