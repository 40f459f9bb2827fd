//! A tenant's access settings as stored: the matrix of roles by models and
//! the row filters. `domain::access` reads them to decide; this module
//! lists and changes them for administrators.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use domain::FieldErrors;
use domain::access::Operator;
use domain::store::{StoreError, stmt};

use crate::models::model;

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize, FromQueryResult)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub role: String,
    pub model: String,
    /// Read (REST lists and gets, sync pulls).
    pub can_pull: bool,
    /// Write (REST creates, updates and deletes, sync pushes).
    pub can_push: bool,
}

/// The matrix, by role and model.
pub async fn grants(conn: &impl ConnectionTrait) -> Result<Vec<Grant>, DbErr> {
    Grant::find_by_statement(stmt(
        "SELECT r.name AS role, p.model, p.can_pull, p.can_push FROM sync_permissions p \
         JOIN roles r ON r.id = p.role_id ORDER BY r.name, p.model",
        [],
    ))
    .all(conn)
    .await
}

/// Sets cells of the matrix; an unknown model or role refuses them all.
pub async fn set_grants(conn: &impl ConnectionTrait, cells: &[Grant]) -> Result<(), StoreError> {
    let mut errors = FieldErrors::new();
    for (i, g) in cells.iter().enumerate() {
        if model(&g.model).is_none() {
            errors.add(
                &format!("[{i}].model"),
                format!("unknown model `{}`", g.model),
            );
        }
    }
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    for (i, g) in cells.iter().enumerate() {
        let name = model(&g.model).map_or("", |m| m.name());
        let res = conn
            .execute_raw(stmt(
                "INSERT INTO sync_permissions (role_id, model, can_pull, can_push) \
                 SELECT id, $2, $3, $4 FROM roles WHERE name = $1 \
                 ON CONFLICT (role_id, model) DO UPDATE SET can_pull = $3, can_push = $4",
                [
                    g.role.clone().into(),
                    name.into(),
                    g.can_pull.into(),
                    g.can_push.into(),
                ],
            ))
            .await?;
        if res.rows_affected() == 0 {
            errors.add(
                &format!("[{i}].role"),
                format!("`{}` is not a role of this tenant", g.role),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(errors))
    }
}

/// A row filter: rows of `model` that `role` reaches must have `field`
/// `operator` `value` (`$user` is the caller).
#[derive(Debug, Clone, Serialize, Deserialize, FromQueryResult)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Filter {
    #[serde(default)]
    pub id: Option<Uuid>,
    pub role: String,
    pub model: String,
    pub field: String,
    /// eq, ne, in (comma-separated values), is_null or not_null.
    pub operator: String,
    /// `$user` stands for the caller's id.
    pub value: Option<String>,
}

/// Every row filter, by role and model.
pub async fn filters(conn: &impl ConnectionTrait) -> Result<Vec<Filter>, DbErr> {
    Filter::find_by_statement(stmt(
        "SELECT f.id, r.name AS role, f.model, f.field, f.operator, f.value FROM sync_filters f \
         JOIN roles r ON r.id = f.role_id ORDER BY r.name, f.model, f.created_at",
        [],
    ))
    .all(conn)
    .await
}

/// Adds a row filter, checked against the model's fields; returns it with
/// its id.
pub async fn add_filter(conn: &impl ConnectionTrait, mut f: Filter) -> Result<Filter, StoreError> {
    let mut errors = FieldErrors::new();
    match model(&f.model) {
        None => errors.add("model", format!("unknown model `{}`", f.model)),
        Some(m) => {
            f.model = m.name().to_owned();
            if m.public_field(&f.field).is_none() {
                errors.add(
                    "field",
                    format!("`{}` is not a field of {}", f.field, m.name()),
                );
            }
        }
    }
    match Operator::parse(&f.operator) {
        None => errors.add("operator", "must be eq, ne, in, is_null or not_null"),
        Some(Operator::Eq | Operator::Ne | Operator::In) if f.value.is_none() => {
            errors.add("value", "is required for this operator");
        }
        Some(_) => {}
    }
    if let Some(v) = &f.value
        && let Err(m) = domain::check::parameter(v, 1000)
    {
        errors.add("value", m);
    }
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    let id = Uuid::now_v7();
    let res = conn
        .execute_raw(stmt(
            "INSERT INTO sync_filters (id, role_id, model, field, operator, value) \
             SELECT $1, id, $3, $4, $5, $6 FROM roles WHERE name = $2",
            [
                id.into(),
                f.role.clone().into(),
                f.model.clone().into(),
                f.field.clone().into(),
                f.operator.clone().into(),
                f.value.clone().into(),
            ],
        ))
        .await?;
    if res.rows_affected() == 0 {
        let mut errors = FieldErrors::new();
        errors.add("role", format!("`{}` is not a role of this tenant", f.role));
        return Err(StoreError::Invalid(errors));
    }
    f.id = Some(id);
    Ok(f)
}

/// Removes a row filter; false if there was none with this id.
pub async fn remove_filter(conn: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let res = conn
        .execute_raw(stmt("DELETE FROM sync_filters WHERE id = $1", [id.into()]))
        .await?;
    Ok(res.rows_affected() > 0)
}
