//! The operations on one record that every single-record writer uses
//! (REST today; jobs, imports and consoles later): the access policy, the
//! model's checks and rules, and the one write path, in that order, inside
//! the caller's tenant transaction. Sync pushes run the same checks and the
//! same statements in bulk (`sync-engine`).

use sea_orm::ConnectionTrait;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::access::{Denied, Permissions};
use crate::check::{self, Mode, Refusal, ServerFields};
use crate::custom::Definitions;
use crate::list::{self, Page, QueryError};
use crate::record::{Naming, Spec};
use crate::store::{self, Returning, StoreError};

/// Who is acting: a user of the tenant, what their roles allow, and the
/// tenant's custom field definitions their writes are checked against.
pub struct Actor<'a> {
    pub user: Uuid,
    pub permissions: &'a Permissions,
    pub custom: &'a Definitions,
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("invalid fields")]
    Refused(Refusal),
    #[error("unknown query parameter `{0}`")]
    UnknownParameter(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Store(err.into())
    }
}

impl From<QueryError> for ServiceError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::Unknown(p) => Self::UnknownParameter(p),
            QueryError::Invalid(errors) => Self::Refused(Refusal {
                errors,
                malformed: false,
            }),
        }
    }
}

/// A page of the records the actor may read. `naming`: how the statement
/// names the table (by schema only where [`Spec::reads_by_schema`]).
pub async fn list(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    naming: Naming<'_>,
    actor: &Actor<'_>,
    params: &[(String, String)],
) -> Result<Page, ServiceError> {
    debug_assert!(naming == Naming::Path || spec.reads_by_schema());
    let scope = actor.permissions.read(spec)?;
    let query = list::parse(spec, actor.custom.of(spec), params)?;
    Ok(list::page(conn, spec, naming, scope, actor.user, query).await?)
}

/// One record the actor may read, as JSON, with its version.
pub async fn get(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    naming: Naming<'_>,
    actor: &Actor<'_>,
    id: Uuid,
) -> Result<(String, i64), ServiceError> {
    debug_assert!(naming == Naming::Path || spec.reads_by_schema());
    let scope = actor.permissions.read(spec)?;
    Ok(store::get(conn, spec, naming, scope, actor.user, id).await?)
}

/// Creates a record from `input` (its `id` minted unless given); returns
/// it as JSON with its version.
pub async fn create(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    actor: &Actor<'_>,
    id: Option<Uuid>,
    input: &Map<String, Value>,
) -> Result<(String, i64), ServiceError> {
    let scope = actor.permissions.write(spec)?;
    let fields = check::input(
        spec,
        actor.custom.of(spec),
        input,
        Mode::Create,
        ServerFields::Refuse,
        Some(actor.user),
    )
    .map_err(ServiceError::Refused)?;
    if !scope.matches(&fields, actor.user) {
        return Err(StoreError::Invalid(store::out_of_scope()).into());
    }
    let id = id.unwrap_or_else(Uuid::now_v7);
    let cols: Vec<&str> = fields.keys().map(String::as_str).collect();
    let rows = [store::row(id, None, &fields)];
    let written = store::insert(conn, spec, &rows, &cols, Returning::Records)
        .await
        .map_err(|e| store::refused(spec, e))?;
    match written.into_iter().next() {
        Some(store::Written {
            record: Some(json),
            version,
            ..
        }) => Ok((json, version)),
        _ => Err(
            StoreError::Conflict(format!("a {} with this id already exists", spec.meta.noun))
                .into(),
        ),
    }
}

/// Applies `input` to record `id` if it is still at `version` and the actor
/// may write it before and after the change; returns it as JSON.
pub async fn update(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    actor: &Actor<'_>,
    id: Uuid,
    version: i64,
    input: &Map<String, Value>,
) -> Result<(String, i64), ServiceError> {
    let scope = actor.permissions.write(spec)?;
    let fields = check::input(
        spec,
        actor.custom.of(spec),
        input,
        Mode::Update,
        ServerFields::Refuse,
        None,
    )
    .map_err(ServiceError::Refused)?;
    let cols: Vec<&str> = fields.keys().map(String::as_str).collect();
    let rows = [store::row(id, Some(version), &fields)];
    let written = store::update(
        conn,
        spec,
        scope,
        actor.user,
        &rows,
        &cols,
        true,
        Returning::Records,
    )
    .await
    .map_err(|e| store::refused(spec, e))?;
    match written.into_iter().next() {
        Some(store::Written {
            record: Some(json),
            version,
            ..
        }) => Ok((json, version)),
        _ => Err(
            store::explain_miss(conn, spec, scope, actor.user, id, Some(version))
                .await
                .into(),
        ),
    }
}

/// Deletes record `id` if the actor may write it.
pub async fn delete(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    actor: &Actor<'_>,
    id: Uuid,
) -> Result<(), ServiceError> {
    let scope = actor.permissions.write(spec)?;
    let rows = [store::row(id, None, &Map::new())];
    let deleted = store::delete(conn, spec, scope, actor.user, &rows, false)
        .await
        .map_err(|e| store::refused(spec, e))?;
    if deleted.is_empty() {
        return Err(StoreError::NotFound(spec.meta.noun).into());
    }
    Ok(())
}
