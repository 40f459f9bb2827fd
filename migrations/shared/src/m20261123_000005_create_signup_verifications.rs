//! Sign-up with e-mail verification: a tenant can wait, `unverified` and not
//! served, until its first administrator proves the address. The message
//! with the token goes to `public.mail_outbox` in the same transaction as
//! the tenant, for a mail relay to deliver.

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
ALTER TABLE public.tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE public.tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('provisioning', 'unverified', 'active', 'suspended', 'deleting'));

CREATE TABLE public.signup_verifications (
    tenant_id   uuid PRIMARY KEY REFERENCES public.tenants (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Messages to send; a relay delivers unsent rows and sets sent_at.
CREATE TABLE public.mail_outbox (
    id          uuid PRIMARY KEY,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX mail_outbox_unsent_idx ON public.mail_outbox (created_at) WHERE sent_at IS NULL;
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE public.mail_outbox; DROP TABLE public.signup_verifications; \
                 DELETE FROM public.tenants WHERE status = 'unverified'; \
                 ALTER TABLE public.tenants DROP CONSTRAINT tenants_status_check; \
                 ALTER TABLE public.tenants ADD CONSTRAINT tenants_status_check \
                 CHECK (status IN ('provisioning', 'active', 'suspended', 'deleting'));",
            )
            .await?;
        Ok(())
    }
}
