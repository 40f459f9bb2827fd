//! Users of the tenant, their roles and role membership, and the refresh
//! tokens of their sessions. The seven standard roles are seeded.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE TABLE roles (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    description  text,
    is_system    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    full_name      text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    password_hash  text,
    phone          text,
    branch_id      uuid REFERENCES branches (id) ON DELETE SET NULL,
    is_active      boolean NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_idx ON users (lower(email));
CREATE INDEX users_branch_id_idx ON users (branch_id);

CREATE TABLE user_roles (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id     uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

INSERT INTO roles (id, name, description, is_system) VALUES
    (gen_random_uuid(), 'Administrators', 'Manage users, roles and every record', true),
    (gen_random_uuid(), 'Managers', 'Manage branches and every CRM record', true),
    (gen_random_uuid(), 'Users', 'Work with CRM records', true),
    (gen_random_uuid(), 'Analysts', 'Read every record', true),
    (gen_random_uuid(), 'Sales', 'Work with clients and their tasks', true),
    (gen_random_uuid(), 'Support', 'Work with clients, contacts and tasks', true),
    (gen_random_uuid(), 'Read Only', 'Read every record', true);

-- One row per issued refresh token; rotation marks the old one used and
-- issues the next in the same family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP TABLE refresh_tokens; DROP TABLE user_roles; DROP TABLE users; DROP TABLE roles;",
        )
        .await
    }
}
