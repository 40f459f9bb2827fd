//! A change to rules or to a user's standing is announced to every server
//! by `NOTIFY` when it commits (`announce_rule_changes`,
//! `session_standing`). The notification reaches the writing server's own
//! listener a moment after the commit, so a request made right after a
//! revocation could still meet the old rules there. The triggers now also
//! note the change in the transaction (`strata.rules_changed`: `on`;
//! `strata.standing_changed`: the user's id, or `*` for several), and the
//! server reads the note just before committing and drops its own cached
//! entries as soon as the commit returns.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE OR REPLACE FUNCTION notify_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('strata_rules', TG_TABLE_SCHEMA);
    PERFORM set_config('strata.rules_changed', 'on', true);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION notify_standing() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    changed jsonb;
    who text;
    noted text := nullif(current_setting('strata.standing_changed', true), '');
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    who := changed ->> TG_ARGV[0];
    PERFORM pg_notify('strata_standing', TG_TABLE_SCHEMA || ' ' || who);
    IF noted IS NULL THEN
        PERFORM set_config('strata.standing_changed', who, true);
    ELSIF noted <> who THEN
        PERFORM set_config('strata.standing_changed', '*', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION notify_standing_of_all() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('strata_standing', TG_TABLE_SCHEMA || ' *');
    PERFORM set_config('strata.standing_changed', '*', true);
    RETURN NULL;
END
$$;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run(
            manager,
            r#"
CREATE OR REPLACE FUNCTION notify_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN PERFORM pg_notify('strata_rules', TG_TABLE_SCHEMA); RETURN NULL; END $$;

CREATE OR REPLACE FUNCTION notify_standing() RETURNS trigger
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

CREATE OR REPLACE FUNCTION notify_standing_of_all() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('strata_standing', TG_TABLE_SCHEMA || ' *');
    RETURN NULL;
END
$$;
"#,
        )
        .await
    }
}
