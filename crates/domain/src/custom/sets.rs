//! The tenant's field sets: named groups of custom field definitions for
//! one model. Every write goes through [`save`], which checks the
//! definitions, keeps keys distinct across the model's sets, and retires
//! (rather than drops) a removed definition whose values records still
//! hold. Writers are serialised per tenant by a table lock, so two saves
//! cannot both take the same key.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Definition, MAX_FIELDS, parse_definitions};
use crate::record::{Spec, models};
use crate::store::{StoreError, stmt};
use crate::validation::FieldErrors;

/// A field set as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldSet {
    pub id: Uuid,
    /// `clients`, `contacts` or `tasks`.
    pub model: String,
    pub name: String,
    pub label: String,
    pub fields: Vec<Definition>,
    /// Counts every write of the set; a replace names the revision it read.
    pub revision: i64,
    /// The platform field set it was distributed from.
    pub origin: Option<Uuid>,
    /// The platform version last distributed to it.
    pub base_version: Option<i32>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromQueryResult)]
struct Row {
    id: Uuid,
    model: String,
    name: String,
    label: String,
    fields: Value,
    revision: i64,
    origin: Option<Uuid>,
    base_version: Option<i32>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<Row> for FieldSet {
    type Error = DbErr;
    fn try_from(r: Row) -> Result<Self, DbErr> {
        Ok(Self {
            fields: serde_json::from_value(r.fields)
                .map_err(|e| DbErr::Custom(format!("field_sets.fields: {e}")))?,
            id: r.id,
            model: r.model,
            name: r.name,
            label: r.label,
            revision: r.revision,
            origin: r.origin,
            base_version: r.base_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str =
    "id, model, name, label, fields, revision, origin, base_version, created_at, updated_at";

/// Where a distributed set came from and what it was given last.
#[derive(Debug, Clone)]
pub struct Origin {
    pub id: Uuid,
    pub version: i32,
    /// The definitions as distributed (the next merge's common ancestor).
    pub base: Vec<Definition>,
}

/// What a save was asked to write.
#[derive(Debug, Clone)]
pub struct Draft {
    pub model: String,
    pub name: String,
    pub label: String,
    /// The definitions, as given (checked by [`save`]).
    pub fields: Value,
}

/// What a save did beyond writing the set.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Saved {
    pub set: Option<FieldSet>,
    /// Removed definitions kept as retired because records hold values.
    pub retired: Vec<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    let mut errors = FieldErrors::new();
    errors.add(field, message);
    StoreError::Invalid(errors)
}

/// The model of a set, by table name.
pub fn model_of(name: &str) -> Result<&'static Spec, StoreError> {
    models()
        .into_iter()
        .find(|m| m.table == name && m.has_custom())
        .ok_or_else(|| invalid("model", "must be clients, contacts or tasks"))
}

/// Every set, of one model or all, by model and name.
pub async fn list(
    conn: &impl ConnectionTrait,
    model: Option<&str>,
) -> Result<Vec<FieldSet>, StoreError> {
    let rows = Row::find_by_statement(stmt(
        &format!(
            "SELECT {COLUMNS} FROM field_sets WHERE $1::text IS NULL OR model = $1 \
             ORDER BY model, name"
        ),
        [model.map(str::to_owned).into()],
    ))
    .all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(FieldSet::try_from)
        .collect::<Result<_, _>>()?)
}

/// One set by id.
pub async fn get(conn: &impl ConnectionTrait, id: Uuid) -> Result<FieldSet, StoreError> {
    find(conn, "id = $1", id.into())
        .await?
        .ok_or(StoreError::NotFound("field set"))
}

/// The set distributed from platform set `origin`, if the tenant has it.
pub async fn by_origin(
    conn: &impl ConnectionTrait,
    origin: Uuid,
) -> Result<Option<(FieldSet, Option<Vec<Definition>>)>, StoreError> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT base FROM field_sets WHERE origin = $1",
            [origin.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let base: Option<Value> = row.try_get_by_index(0)?;
    let base = base
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| DbErr::Custom(format!("field_sets.base: {e}")))?;
    let set = find(conn, "origin = $1", origin.into()).await?;
    Ok(set.map(|s| (s, base)))
}

async fn find(
    conn: &impl ConnectionTrait,
    condition: &str,
    value: sea_orm::Value,
) -> Result<Option<FieldSet>, StoreError> {
    let row = Row::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM field_sets WHERE {condition}"),
        [value],
    ))
    .one(conn)
    .await?;
    Ok(row.map(FieldSet::try_from).transpose()?)
}

/// Serialises the tenant's writers of field sets until the transaction
/// ends (readers go on). Taken again by a caller that read first is a
/// no-op.
pub async fn lock(conn: &impl ConnectionTrait) -> Result<(), StoreError> {
    conn.execute_raw(stmt(
        "LOCK TABLE field_sets IN SHARE ROW EXCLUSIVE MODE",
        [],
    ))
    .await?;
    Ok(())
}

/// Creates a set (`id` None) or replaces set `id` if it is still at
/// `revision`: checks the definitions, keeps keys distinct across the
/// model's sets, and retires removed definitions records still hold.
pub async fn save(
    conn: &impl ConnectionTrait,
    id: Option<(Uuid, i64)>,
    draft: &Draft,
    origin: Option<&Origin>,
) -> Result<Saved, StoreError> {
    let spec = model_of(&draft.model)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", crate::validation::text(&draft.name, 1, 100));
    let label = errors.check("label", crate::validation::text(&draft.label, 1, 200));
    let fields = match parse_definitions(&draft.fields) {
        Ok(f) => Some(f),
        Err(e) => {
            errors.errors.extend(e.errors);
            None
        }
    };
    let (Some(name), Some(label), Some(mut fields)) = (name, label, fields) else {
        return Err(StoreError::Invalid(errors));
    };
    lock(conn).await?;
    let old = match id {
        Some((id, revision)) => {
            let old = get(conn, id).await?;
            if old.revision != revision {
                return Err(StoreError::Stale {
                    given: revision,
                    current: old.revision,
                });
            }
            if old.model != draft.model {
                return Err(invalid("model", "cannot be changed"));
            }
            Some(old)
        }
        None => None,
    };
    // Keys the model's other sets use.
    let others = list(conn, Some(&draft.model)).await?;
    let mut taken = 0;
    for other in others
        .iter()
        .filter(|o| old.as_ref().is_none_or(|s| s.id != o.id))
    {
        taken += other.fields.len();
        for (i, d) in fields.iter().enumerate() {
            if other.fields.iter().any(|o| o.key == d.key) {
                errors.add(
                    &format!("fields[{i}].key"),
                    format!("is a field of set `{}`", other.name),
                );
            }
        }
    }
    if taken + fields.len() > MAX_FIELDS {
        errors.add(
            "fields",
            format!("a model has at most {MAX_FIELDS} custom fields over all its sets"),
        );
    }
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    let mut retired = Vec::new();
    if let Some(old) = &old {
        let gone: Vec<&Definition> = old
            .fields
            .iter()
            .filter(|o| !fields.iter().any(|d| d.key == o.key))
            .collect();
        let held = held_keys(conn, spec, gone.iter().map(|d| d.key.as_str())).await?;
        for d in gone.into_iter().filter(|d| held.contains(&d.key)) {
            retired.push(d.key.clone());
            fields.push(Definition {
                retired: true,
                required: false,
                ..d.clone()
            });
        }
    }
    let json = serde_json::to_value(&fields).map_err(|e| DbErr::Custom(e.to_string()))?;
    let (origin_id, base, base_version) = match origin {
        Some(o) => (
            Some(o.id),
            Some(serde_json::to_value(&o.base).map_err(|e| DbErr::Custom(e.to_string()))?),
            Some(o.version),
        ),
        None => (None, None, None),
    };
    let row = match old {
        None => Row::find_by_statement(stmt(
            &format!(
                "INSERT INTO field_sets (id, model, name, label, fields, origin, base, base_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (model, name) DO NOTHING RETURNING {COLUMNS}"
            ),
            [
                Uuid::now_v7().into(),
                draft.model.clone().into(),
                name.into(),
                label.into(),
                json.into(),
                origin_id.into(),
                base.into(),
                base_version.into(),
            ],
        ))
        .one(conn)
        .await?
        .ok_or_else(|| {
            StoreError::Conflict(format!("{} already has a field set of this name", spec.table))
        })?,
        Some(old) => Row::find_by_statement(stmt(
            &format!(
                "UPDATE field_sets SET name = $2, label = $3, fields = $4, \
                        origin = coalesce($5, origin), base = coalesce($6, base), \
                        base_version = coalesce($7, base_version), \
                        revision = revision + 1, updated_at = now() \
                  WHERE id = $1 RETURNING {COLUMNS}"
            ),
            [
                old.id.into(),
                name.into(),
                label.into(),
                json.into(),
                origin_id.into(),
                base.into(),
                base_version.into(),
            ],
        ))
        .one(conn)
        .await
        .map_err(|e| match crate::store::sqlstate(&e).as_deref() {
            Some("23505") => StoreError::Conflict(format!(
                "{} already has a field set of this name",
                spec.table
            )),
            _ => e.into(),
        })?
        .ok_or(StoreError::NotFound("field set"))?,
    };
    Ok(Saved {
        set: Some(row.try_into()?),
        retired,
    })
}

/// Of `keys`, those some record of `spec` holds a value of.
pub async fn held_keys<'a>(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    keys: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, StoreError> {
    let keys: Vec<String> = keys.map(str::to_owned).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn
        .query_all_raw(stmt(
            &format!(
                "SELECT k FROM unnest($1::text[]) k \
                  WHERE EXISTS (SELECT 1 FROM {} WHERE custom ? k)",
                spec.table
            ),
            [keys.into()],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

/// Deletes set `id` and its fields' values from every record of its
/// model (one statement, journaled like any update); returns how many
/// records lost values.
pub async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<u64, StoreError> {
    lock(conn).await?;
    let set = get(conn, id).await?;
    let spec = model_of(&set.model)?;
    let keys: Vec<String> = set.fields.iter().map(|d| d.key.clone()).collect();
    let cleared = if keys.is_empty() {
        0
    } else {
        conn.execute_raw(stmt(
            &format!(
                "UPDATE {} SET custom = custom - $1::text[] WHERE custom ?| $1::text[]",
                spec.table
            ),
            [keys.into()],
        ))
        .await?
        .rows_affected()
    };
    conn.execute_raw(stmt("DELETE FROM field_sets WHERE id = $1", [id.into()]))
        .await?;
    Ok(cleared)
}
