//! Tasks: work items, usually about a client, assigned to a user.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub priority: String,
    pub due_date: Option<Date>,
    pub assignee_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub completed_at: Option<DateTimeUtc>,
    /// Values of the tenant's custom fields, by key.
    pub custom: Json,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
