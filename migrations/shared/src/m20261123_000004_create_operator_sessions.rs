//! Operator sessions, so an operator's tokens can be revoked: one row per
//! sign-in (the token's session id), revoked by signing out; and a
//! credentials epoch that a password change or `migrator operator revoke`
//! raises, ending every session at once. Changes are announced with
//! `NOTIFY strata_standing, 'public <operator id>'`, as tenant users' are.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
ALTER TABLE public.platform_operators
    ADD COLUMN credentials_epoch bigint NOT NULL DEFAULT 1;

CREATE TABLE public.platform_operator_sessions (
    id           uuid PRIMARY KEY,
    operator_id  uuid NOT NULL REFERENCES public.platform_operators (id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_operator_sessions_operator_idx
    ON public.platform_operator_sessions (operator_id);

CREATE FUNCTION public.platform_operators_credentials_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        NEW.credentials_epoch := OLD.credentials_epoch + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER platform_operators_credentials_epoch BEFORE UPDATE ON public.platform_operators
    FOR EACH ROW EXECUTE FUNCTION public.platform_operators_credentials_epoch();

-- TG_ARGV[0] names the column holding the operator's id.
CREATE FUNCTION public.notify_operator_standing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify('strata_standing', 'public ' || (changed ->> TG_ARGV[0]));
    RETURN NULL;
END
$$;
CREATE TRIGGER platform_operators_notify_standing
    AFTER UPDATE OR DELETE ON public.platform_operators
    FOR EACH ROW EXECUTE FUNCTION public.notify_operator_standing('id');
CREATE TRIGGER platform_operator_sessions_notify_standing
    AFTER UPDATE OR DELETE ON public.platform_operator_sessions
    FOR EACH ROW EXECUTE FUNCTION public.notify_operator_standing('operator_id');
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE public.platform_operator_sessions; \
                 DROP TRIGGER platform_operators_notify_standing ON public.platform_operators; \
                 DROP FUNCTION public.notify_operator_standing(); \
                 DROP TRIGGER platform_operators_credentials_epoch ON public.platform_operators; \
                 DROP FUNCTION public.platform_operators_credentials_epoch(); \
                 ALTER TABLE public.platform_operators DROP COLUMN credentials_epoch;",
            )
            .await?;
        Ok(())
    }
}
