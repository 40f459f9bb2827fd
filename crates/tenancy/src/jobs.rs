//! Durable platform jobs: one row per job, one item per target tenant, in
//! `public` (see the shared migration `create_platform_jobs`).
//!
//! [`claim`] takes one pending item with `FOR UPDATE SKIP LOCKED` and
//! returns it with a tenant transaction on the same connection: the
//! item's work and [`Claimed::complete`] commit together. A worker killed
//! mid-item leaves nothing behind (PostgreSQL rolls the transaction back
//! and releases the row), so the next worker runs the item whole; an item
//! is never applied twice. Each job runs at most `concurrency` items at
//! once: a claim first takes one of the job's advisory slots.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, TransactionTrait,
};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;
use crate::registry::{Registry, Tenant};
use crate::scope::TenantTx;
use crate::slug::Slug;
use crate::sql::{Then, enter_schema, stmt};
use crate::writer::{self, Actor, Channel, Writer};

/// The channel workers listen on for new or retried work.
pub const CHANNEL: &str = "strata_jobs";

/// First key of a job's concurrency slots (`"JOBS"`); the second is
/// `(hashtext(job id) % 2^25) * 64 + slot`, within int4.
const SLOT_CLASS: i32 = 0x4a4f_4253;

/// A job to start.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub params: Value,
    /// One line saying what it does, for lists.
    pub summary: String,
    pub tenants: Vec<Slug>,
    pub concurrency: i32,
    pub max_attempts: i32,
    /// Who started it (an operator's e-mail, or `migrator`).
    pub created_by: String,
}

/// Records `job` and its items, and wakes the workers.
pub async fn create(db: &DatabaseConnection, job: &NewJob) -> Result<Uuid, Error> {
    if !(1..=64).contains(&job.concurrency) {
        return Err(Error::InvalidJob("concurrency must be 1 to 64".into()));
    }
    if !(1..=100).contains(&job.max_attempts) {
        return Err(Error::InvalidJob("attempts must be 1 to 100".into()));
    }
    if job.tenants.is_empty() {
        return Err(Error::InvalidJob("no tenant to run it on".into()));
    }
    let id = Uuid::now_v7();
    let tenants: Vec<String> = job.tenants.iter().map(|s| s.as_str().to_owned()).collect();
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        "INSERT INTO public.platform_jobs \
             (id, kind, params, summary, concurrency, max_attempts, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            id.into(),
            job.kind.clone().into(),
            job.params.clone().into(),
            job.summary.clone().into(),
            job.concurrency.into(),
            job.max_attempts.into(),
            job.created_by.clone().into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO public.platform_job_items (job_id, tenant) \
         SELECT $1, t FROM unnest($2::text[]) t ON CONFLICT DO NOTHING",
        [id.into(), tenants.into()],
    ))
    .await?;
    notify(&txn).await?;
    txn.commit().await?;
    Ok(id)
}

async fn notify(conn: &impl ConnectionTrait) -> Result<(), Error> {
    conn.execute_raw(stmt("SELECT pg_notify($1, '')", [CHANNEL.into()]))
        .await?;
    Ok(())
}

/// An item being run: its tenant transaction holds the item's row lock.
pub struct Claimed {
    pub job: Uuid,
    pub kind: String,
    pub params: Value,
    pub tenant: Tenant,
    pub attempt: i32,
    started: DateTime<Utc>,
    tx: TenantTx,
}

impl Claimed {
    /// The tenant transaction to do the item's work in.
    pub fn tx(&self) -> &TenantTx {
        &self.tx
    }

    /// Marks the item done with `result` and commits it with its work.
    pub async fn complete(self, result: Value) -> Result<(), Error> {
        self.tx
            .execute_raw(stmt(
                "UPDATE public.platform_job_items \
                    SET status = 'done', result = $3, error = NULL, attempts = attempts + 1, \
                        started_at = $4, finished_at = clock_timestamp() \
                  WHERE job_id = $1 AND tenant = $2",
                [
                    self.job.into(),
                    self.tenant.slug().as_str().into(),
                    result.into(),
                    self.started.into(),
                ],
            ))
            .await?;
        finish_if_drained(self.tx.conn(), self.job).await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls the item's work back and records the failed attempt: with
    /// `retry`, the item waits and runs again until the job's attempts are
    /// spent; without, it fails for good.
    pub async fn fail(
        self,
        db: &DatabaseConnection,
        error: &str,
        retry: bool,
    ) -> Result<(), Error> {
        let (job, tenant, started) = (self.job, self.tenant.slug().clone(), self.started);
        self.tx.rollback().await?;
        record_failure(db, job, &tenant, started, error, retry).await
    }
}

async fn record_failure(
    db: &DatabaseConnection,
    job: Uuid,
    tenant: &Slug,
    started: DateTime<Utc>,
    error: &str,
    retry: bool,
) -> Result<(), Error> {
    let error: String = error.chars().filter(|c| *c != '\0').take(2_000).collect();
    let txn = db.begin().await?;
    // Only while still pending: another worker may have run it since.
    txn.execute_raw(stmt(
        "UPDATE public.platform_job_items i \
            SET attempts = i.attempts + 1, error = $3, started_at = $4, \
                finished_at = clock_timestamp(), \
                status = CASE WHEN NOT $5 OR i.attempts + 1 >= j.max_attempts \
                              THEN 'failed' ELSE 'pending' END, \
                available_at = now() + least(interval '1 second' * 2 ^ i.attempts, interval '5 minutes') \
           FROM public.platform_jobs j \
          WHERE j.id = i.job_id AND i.job_id = $1 AND i.tenant = $2 AND i.status = 'pending'",
        [
            job.into(),
            tenant.as_str().into(),
            error.into(),
            started.into(),
            retry.into(),
        ],
    ))
    .await?;
    finish_if_drained(&txn, job).await?;
    txn.commit().await?;
    Ok(())
}

/// Marks `job` finished once no item is pending. The job row is locked
/// first, so of two items finishing at once the second looks for pending
/// items only after the first committed (each alone would still see the
/// other pending, and the job would never finish).
async fn finish_if_drained(conn: &impl ConnectionTrait, job: Uuid) -> Result<(), Error> {
    conn.execute_raw(stmt(
        "SELECT 1 FROM public.platform_jobs WHERE id = $1 FOR UPDATE",
        [job.into()],
    ))
    .await?;
    conn.execute_raw(stmt(
        "UPDATE public.platform_jobs SET status = 'finished', finished_at = clock_timestamp() \
          WHERE id = $1 AND status = 'running' AND NOT EXISTS ( \
                SELECT 1 FROM public.platform_job_items WHERE job_id = $1 AND status = 'pending')",
        [job.into()],
    ))
    .await?;
    Ok(())
}

/// Takes one item of a running job that is ready and within its job's
/// concurrency, with its tenant transaction; `None` when there is none.
pub async fn claim(registry: &Registry) -> Result<Option<Claimed>, Error> {
    let db = registry.db();
    let jobs = db
        .query_all_raw(stmt(
            "SELECT j.id, j.concurrency FROM public.platform_jobs j \
              WHERE j.status = 'running' AND EXISTS ( \
                    SELECT 1 FROM public.platform_job_items i \
                     WHERE i.job_id = j.id AND i.status = 'pending' AND i.available_at <= now()) \
              ORDER BY j.created_at",
            [],
        ))
        .await?;
    for row in jobs {
        let job: Uuid = row.try_get_by_index(0)?;
        let concurrency: i32 = row.try_get_by_index(1)?;
        let txn = db.begin().await?;
        match claim_in(registry, &txn, job, concurrency).await? {
            Some((tenant, kind, params, attempt)) => {
                let writer = Writer {
                    actor: Actor::Operator,
                    channel: Channel::Job,
                    request_id: Some(job.to_string()),
                };
                let schema = tenant.schema().clone();
                match writer::scope(writer, enter_schema(&txn, &schema, Then::Public)).await {
                    Ok(()) => {}
                    Err(Error::SchemaMissing(_)) => {
                        fail_now(&txn, job, &tenant, "the tenant's schema is missing").await?;
                        txn.commit().await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                return Ok(Some(Claimed {
                    job,
                    kind,
                    params,
                    tenant,
                    attempt,
                    started: Utc::now(),
                    tx: TenantTx::entered(txn, schema),
                }));
            }
            None => txn.rollback().await?,
        }
    }
    Ok(None)
}

/// Within `txn`: a free slot of `job`, then one ready item (locked).
async fn claim_in(
    registry: &Registry,
    txn: &DatabaseTransaction,
    job: Uuid,
    concurrency: i32,
) -> Result<Option<(Tenant, String, Value, i32)>, Error> {
    loop {
        let slot = txn
            .query_one_raw(stmt(
                "SELECT s FROM generate_series(0, $3 - 1) s \
                  WHERE pg_try_advisory_xact_lock($1, (hashtext($2::text) % 33554432) * 64 + s) LIMIT 1",
                [SLOT_CLASS.into(), job.into(), concurrency.into()],
            ))
            .await?;
        if slot.is_none() {
            return Ok(None);
        }
        let item = txn
            .query_one_raw(stmt(
                "SELECT i.tenant, j.kind, j.params, i.attempts + 1 \
                   FROM public.platform_job_items i JOIN public.platform_jobs j ON j.id = i.job_id \
                  WHERE i.job_id = $1 AND i.status = 'pending' AND i.available_at <= now() \
                    AND j.status = 'running' \
                  ORDER BY i.available_at, i.tenant LIMIT 1 FOR UPDATE OF i SKIP LOCKED",
                [job.into()],
            ))
            .await?;
        let Some(item) = item else { return Ok(None) };
        let slug: String = item.try_get_by_index(0)?;
        let found = match Slug::parse(&slug) {
            Ok(s) => registry.find_by_slug(&s).await?,
            Err(_) => None,
        };
        match found {
            Some(tenant) => {
                return Ok(Some((
                    tenant,
                    item.try_get_by_index(1)?,
                    item.try_get_by_index(2)?,
                    item.try_get_by_index(3)?,
                )));
            }
            None => {
                txn.execute_raw(stmt(
                    "UPDATE public.platform_job_items \
                        SET status = 'failed', error = 'no such tenant', attempts = attempts + 1, \
                            finished_at = clock_timestamp() \
                      WHERE job_id = $1 AND tenant = $2",
                    [job.into(), slug.into()],
                ))
                .await?;
                finish_if_drained(txn, job).await?;
            }
        }
    }
}

async fn fail_now(
    txn: &DatabaseTransaction,
    job: Uuid,
    tenant: &Tenant,
    error: &str,
) -> Result<(), Error> {
    txn.execute_raw(stmt(
        "UPDATE public.platform_job_items \
            SET status = 'failed', error = $3, attempts = attempts + 1, \
                finished_at = clock_timestamp() \
          WHERE job_id = $1 AND tenant = $2",
        [job.into(), tenant.slug().as_str().into(), error.into()],
    ))
    .await?;
    finish_if_drained(txn, job).await
}

/// A job and how far it has come.
#[derive(Debug, Clone, Serialize, FromQueryResult, utoipa::ToSchema)]
pub struct Progress {
    pub id: Uuid,
    pub kind: String,
    pub summary: String,
    /// `running`, `cancelled` or `finished`.
    pub status: String,
    pub concurrency: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub total: i64,
    pub done: i64,
    pub failed: i64,
    pub pending: i64,
    pub cancelled: i64,
    /// Items finished per second over the last half minute of work.
    pub rate: f64,
    /// Seconds until the pending items are done at that rate.
    pub eta_seconds: Option<f64>,
    /// Finished (done or failed) items per hundred.
    pub percent: f64,
}

const PROGRESS: &str = "SELECT j.id, j.kind, j.summary, j.status, j.concurrency, j.created_by, \
            j.created_at, j.finished_at, c.total, c.done, c.failed, c.pending, c.cancelled, \
            coalesce(r.n / greatest(r.span, 0.001), 0)::float8 AS rate, \
            CASE WHEN c.pending > 0 AND r.n > 0 \
                 THEN (c.pending / (r.n / greatest(r.span, 0.001)))::float8 END AS eta_seconds, \
            CASE WHEN c.total = 0 THEN 100 \
                 ELSE round(100.0 * (c.done + c.failed) / c.total, 1) END::float8 AS percent \
       FROM public.platform_jobs j \
       CROSS JOIN LATERAL ( \
            SELECT count(*) AS total, \
                   count(*) FILTER (WHERE status = 'done') AS done, \
                   count(*) FILTER (WHERE status = 'failed') AS failed, \
                   count(*) FILTER (WHERE status = 'pending') AS pending, \
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled \
              FROM public.platform_job_items WHERE job_id = j.id) c \
       CROSS JOIN LATERAL ( \
            SELECT count(*)::float8 AS n, \
                   extract(epoch FROM max(finished_at) - min(started_at))::float8 AS span \
              FROM public.platform_job_items \
             WHERE job_id = j.id AND status IN ('done', 'failed') \
               AND finished_at > (SELECT max(finished_at) FROM public.platform_job_items \
                                   WHERE job_id = j.id) - interval '30 seconds') r";

/// Job `id` and its progress.
pub async fn progress(db: &DatabaseConnection, id: Uuid) -> Result<Progress, Error> {
    Progress::find_by_statement(stmt(&format!("{PROGRESS} WHERE j.id = $1"), [id.into()]))
        .one(db)
        .await?
        .ok_or(Error::JobNotFound(id))
}

/// The latest `limit` jobs, newest first.
pub async fn list(db: &DatabaseConnection, limit: u64) -> Result<Vec<Progress>, Error> {
    Ok(Progress::find_by_statement(stmt(
        &format!("{PROGRESS} ORDER BY j.created_at DESC LIMIT $1"),
        [(limit as i64).into()],
    ))
    .all(db)
    .await?)
}

/// One item of a job.
#[derive(Debug, Clone, Serialize, FromQueryResult, utoipa::ToSchema)]
pub struct Item {
    pub tenant: String,
    pub status: String,
    pub attempts: i32,
    pub error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Job `id`'s items, of one status or all, by tenant.
pub async fn items(
    db: &DatabaseConnection,
    id: Uuid,
    status: Option<&str>,
) -> Result<Vec<Item>, Error> {
    progress(db, id).await?;
    Ok(Item::find_by_statement(stmt(
        "SELECT tenant, status, attempts, error, result, started_at, finished_at \
           FROM public.platform_job_items \
          WHERE job_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY tenant",
        [id.into(), status.map(str::to_owned).into()],
    ))
    .all(db)
    .await?)
}

/// Cancels job `id`: its pending items are not run (one being run
/// finishes). Returns the job.
pub async fn cancel(db: &DatabaseConnection, id: Uuid) -> Result<Progress, Error> {
    let txn = db.begin().await?;
    let res = txn
        .execute_raw(stmt(
            "UPDATE public.platform_jobs SET status = 'cancelled', finished_at = clock_timestamp() \
              WHERE id = $1 AND status = 'running'",
            [id.into()],
        ))
        .await?;
    if res.rows_affected() == 1 {
        txn.execute_raw(stmt(
            "UPDATE public.platform_job_items SET status = 'cancelled' \
              WHERE (job_id, tenant) IN ( \
                    SELECT job_id, tenant FROM public.platform_job_items \
                     WHERE job_id = $1 AND status = 'pending' FOR UPDATE SKIP LOCKED)",
            [id.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    progress(db, id).await
}

/// Runs job `id`'s failed and cancelled items again (with fresh
/// attempts), reopening the job.
pub async fn retry(db: &DatabaseConnection, id: Uuid) -> Result<Progress, Error> {
    progress(db, id).await?;
    let txn = db.begin().await?;
    let res = txn
        .execute_raw(stmt(
            "UPDATE public.platform_job_items \
                SET status = 'pending', attempts = 0, error = NULL, available_at = now() \
              WHERE job_id = $1 AND status IN ('failed', 'cancelled')",
            [id.into()],
        ))
        .await?;
    if res.rows_affected() > 0 {
        txn.execute_raw(stmt(
            "UPDATE public.platform_jobs SET status = 'running', finished_at = NULL WHERE id = $1",
            [id.into()],
        ))
        .await?;
        notify(&txn).await?;
    }
    txn.commit().await?;
    progress(db, id).await
}
