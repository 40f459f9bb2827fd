//! Which changes are events: the tenant's `event_types`. Every model has
//! `<model>.created`, `.updated` and `.deleted`, which can be disabled but
//! not removed; administrators add (and remove) types for the updates of
//! one public field, `<model>.<field>.updated`. Disabled types make no
//! events, no deliveries and no stream messages.

use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::Serialize;

use crate::store::{StoreError, stmt};
use crate::validation::FieldErrors;

/// One event type.
#[derive(Debug, Serialize, FromQueryResult, utoipa::ToSchema)]
pub struct EventType {
    pub name: String,
    pub model: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// The field whose updates it is, for field types.
    pub field: Option<String>,
    pub enabled: bool,
}

const COLUMNS: &str = "name, model, action, field, enabled";

/// Every event type, by name.
pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<EventType>, StoreError> {
    Ok(EventType::find_by_statement(stmt(
        &format!("SELECT {COLUMNS} FROM event_types ORDER BY name"),
        [],
    ))
    .all(conn)
    .await?)
}

fn invalid(field: &str, message: &str) -> StoreError {
    let mut errors = FieldErrors::new();
    errors.add(field, message);
    StoreError::Invalid(errors)
}

/// A type name as given: short, no control characters.
fn checked(name: &str) -> Result<&str, StoreError> {
    crate::check::parameter(name, 200).map_err(|m| invalid("name", &m))
}

/// Adds the type of the updates of `field` of `model` (a model's table
/// name, e.g. `clients`): `client.<field>.updated`.
pub async fn add_field(
    conn: &impl ConnectionTrait,
    model: &str,
    field: &str,
) -> Result<EventType, StoreError> {
    let spec = crate::record::models()
        .into_iter()
        .find(|m| m.table == model)
        .ok_or_else(|| invalid("model", "is not a model"))?;
    match spec.public_field(field) {
        Some(f) if !matches!(f.name, "id" | "version" | "created_at" | "updated_at") => {}
        _ => {
            return Err(invalid(
                "field",
                "is not a field of the model that can change",
            ));
        }
    }
    let made = EventType::find_by_statement(stmt(
        &format!(
            "INSERT INTO event_types (name, model, action, field) \
             SELECT split_part(name, '.', 1) || '.' || $2 || '.updated', model, 'update', $2 \
               FROM event_types WHERE model = $1 AND action = 'create' AND field IS NULL \
             ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
        ),
        [model.into(), field.into()],
    ))
    .one(conn)
    .await?;
    made.ok_or_else(|| StoreError::Conflict("this event type exists".into()))
}

/// Enables or disables a type.
pub async fn set_enabled(
    conn: &impl ConnectionTrait,
    name: &str,
    enabled: bool,
) -> Result<EventType, StoreError> {
    checked(name)?;
    EventType::find_by_statement(stmt(
        &format!("UPDATE event_types SET enabled = $2 WHERE name = $1 RETURNING {COLUMNS}"),
        [name.into(), enabled.into()],
    ))
    .one(conn)
    .await?
    .ok_or(StoreError::NotFound("event type"))
}

/// Removes a field type (a model's own types can only be disabled).
/// Endpoints subscribed to it keep the name and receive nothing of it.
pub async fn remove_field(conn: &impl ConnectionTrait, name: &str) -> Result<(), StoreError> {
    checked(name)?;
    let row = conn
        .query_one_raw(stmt(
            "WITH gone AS (DELETE FROM event_types WHERE name = $1 AND field IS NOT NULL \
                           RETURNING 1) \
             SELECT (SELECT count(*) FROM gone), \
                    EXISTS (SELECT 1 FROM event_types WHERE name = $1)",
            [name.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound("event type"))?;
    let gone: i64 = row.try_get_by_index(0)?;
    let exists: bool = row.try_get_by_index(1)?;
    match (gone, exists) {
        (1.., _) => Ok(()),
        (_, true) => Err(StoreError::Conflict(
            "a model's own event types can be disabled, not removed".into(),
        )),
        _ => Err(StoreError::NotFound("event type")),
    }
}
