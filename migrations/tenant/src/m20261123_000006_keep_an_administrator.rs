//! Every tenant keeps an active administrator, whoever writes: REST, a sync
//! push, a job or an operator's SQL. A statement that disables, demotes or
//! deletes the last active holder of Administrators fails with SQLSTATE
//! SA001. The check takes a lock on the Administrators role row first, so
//! two concurrent changes cannot each leave the other as the last one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE FUNCTION keep_an_administrator() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        -- Only disabling an active administrator can remove the last one.
        IF NOT EXISTS (
            SELECT 1 FROM old_rows o
            JOIN new_rows n ON n.id = o.id
            JOIN user_roles ur ON ur.user_id = o.id
            JOIN roles r ON r.id = ur.role_id
            WHERE o.is_active AND NOT n.is_active AND r.name = 'Administrators'
        ) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (
        SELECT 1 FROM old_rows o JOIN roles r ON r.id = o.role_id
        WHERE r.name = 'Administrators'
    ) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM roles WHERE name = 'Administrators' FOR UPDATE;
    IF NOT EXISTS (
        SELECT 1 FROM user_roles ur
        JOIN roles r ON r.id = ur.role_id
        JOIN users u ON u.id = ur.user_id
        WHERE r.name = 'Administrators' AND u.is_active
    ) THEN
        RAISE EXCEPTION 'the last administrator cannot be removed, disabled or demoted'
            USING ERRCODE = 'SA001';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_keep_an_administrator AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION keep_an_administrator();
-- Deleting a user deletes its roles (ON DELETE CASCADE), which fires this.
CREATE TRIGGER user_roles_keep_an_administrator AFTER DELETE ON user_roles
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION keep_an_administrator();
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP TRIGGER user_roles_keep_an_administrator ON user_roles; \
             DROP TRIGGER users_keep_an_administrator ON users; \
             DROP FUNCTION keep_an_administrator();",
        )
        .await
    }
}
