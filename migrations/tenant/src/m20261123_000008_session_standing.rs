//! What a signed-in user may still do is read from the database on every
//! server, so a change takes effect at once everywhere:
//!
//! - `users.credentials_epoch` goes up when the password changes; access
//!   tokens name the epoch they were issued in and older ones are refused.
//! - A password change or disabling an account revokes its refresh tokens.
//! - Every change to a user's standing (disabled, deleted, new password,
//!   roles granted or taken, a session revoked, a role renamed) is announced
//!   with `NOTIFY strata_standing, '<schema> <user id>'` (`'<schema> *'` for
//!   every user of the tenant). Servers drop what they cached on it. The
//!   notification is sent when the transaction commits, whoever wrote:
//!   REST, a sync push, a job or an operator's SQL.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
ALTER TABLE users ADD COLUMN credentials_epoch bigint NOT NULL DEFAULT 1;

CREATE FUNCTION users_credentials_epoch() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.credentials_epoch := OLD.credentials_epoch + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_credentials_epoch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_credentials_epoch();

CREATE FUNCTION users_end_sessions() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE refresh_tokens SET revoked_at = now()
    WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_end_sessions AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (NEW.credentials_epoch <> OLD.credentials_epoch OR (OLD.is_active AND NOT NEW.is_active))
    EXECUTE FUNCTION users_end_sessions();

-- TG_ARGV[0] names the column holding the user's id.
CREATE FUNCTION notify_standing() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    changed jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify('strata_standing', TG_TABLE_SCHEMA || ' ' || (changed ->> TG_ARGV[0]));
    RETURN NULL;
END
$$;
CREATE FUNCTION notify_standing_of_all() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('strata_standing', TG_TABLE_SCHEMA || ' *');
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_standing AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (NEW.is_active IS DISTINCT FROM OLD.is_active
          OR NEW.credentials_epoch <> OLD.credentials_epoch)
    EXECUTE FUNCTION notify_standing('id');
CREATE TRIGGER users_deleted_notify_standing AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_standing('id');
CREATE TRIGGER user_roles_notify_standing AFTER INSERT OR UPDATE OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION notify_standing('user_id');
CREATE TRIGGER refresh_tokens_notify_standing AFTER UPDATE ON refresh_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION notify_standing('user_id');
CREATE TRIGGER roles_notify_standing AFTER UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION notify_standing_of_all();
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            "DROP TRIGGER roles_notify_standing ON roles; \
             DROP TRIGGER refresh_tokens_notify_standing ON refresh_tokens; \
             DROP TRIGGER user_roles_notify_standing ON user_roles; \
             DROP TRIGGER users_deleted_notify_standing ON users; \
             DROP TRIGGER users_notify_standing ON users; \
             DROP FUNCTION notify_standing_of_all(); DROP FUNCTION notify_standing(); \
             DROP TRIGGER users_end_sessions ON users; DROP FUNCTION users_end_sessions(); \
             DROP TRIGGER users_credentials_epoch ON users; DROP FUNCTION users_credentials_epoch(); \
             ALTER TABLE users DROP COLUMN credentials_epoch;",
        )
        .await
    }
}
