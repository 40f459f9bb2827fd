//! Clients (the companies a tenant does business with) and their contacts.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE TABLE clients (
    id                   uuid PRIMARY KEY,
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status               text NOT NULL DEFAULT 'lead'
                         CHECK (status IN ('lead', 'prospect', 'active', 'inactive', 'archived')),
    department           text,
    assigned_manager_id  uuid REFERENCES users (id) ON DELETE SET NULL,
    branch_id            uuid REFERENCES branches (id) ON DELETE SET NULL,
    email                text,
    phone                text,
    website              text,
    address              text,
    city                 text,
    country              text CHECK (length(country) = 2),
    tax_id               text,
    version              bigint NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_status_idx ON clients (status);
CREATE INDEX clients_assigned_manager_id_idx ON clients (assigned_manager_id);
CREATE INDEX clients_branch_id_idx ON clients (branch_id);
CREATE INDEX clients_name_idx ON clients (lower(name));

CREATE TABLE contacts (
    id          uuid PRIMARY KEY,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    first_name  text NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100),
    last_name   text NOT NULL DEFAULT '' CHECK (length(last_name) <= 100),
    email       text,
    phone       text,
    position    text,
    is_primary  boolean NOT NULL DEFAULT false,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_client_id_idx ON contacts (client_id);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(manager, "DROP TABLE contacts; DROP TABLE clients;").await
    }
}
