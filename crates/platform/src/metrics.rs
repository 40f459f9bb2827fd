//! Platform-wide figures for operators: tenants by status, jobs at work,
//! the database's size and connections.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;
use tenancy::stmt;

use crate::error::Error;

/// The platform at a glance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    pub tenants: i64,
    /// Tenants per status.
    pub tenants_by_status: BTreeMap<String, i64>,
    pub jobs_running: i64,
    /// Job items waiting to run, over every running job.
    pub job_items_pending: i64,
    pub jobs_last_day: i64,
    /// The database's size on disk.
    pub database_bytes: i64,
    /// Sessions connected to the database now.
    pub database_connections: i64,
}

/// Reads the figures (a few catalog and registry counts).
pub async fn read(db: &DatabaseConnection) -> Result<Metrics, Error> {
    let row = db
        .query_one_raw(stmt(
            "SELECT (SELECT count(*) FROM public.tenants), \
                    (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM \
                       (SELECT status, count(*) AS n FROM public.tenants GROUP BY status) s), \
                    (SELECT count(*) FROM public.platform_jobs WHERE status = 'running'), \
                    (SELECT count(*) FROM public.platform_job_items i \
                       JOIN public.platform_jobs j ON j.id = i.job_id \
                      WHERE j.status = 'running' AND i.status = 'pending'), \
                    (SELECT count(*) FROM public.platform_jobs \
                      WHERE created_at > now() - interval '1 day'), \
                    pg_database_size(current_database()), \
                    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())",
            [],
        ))
        .await?
        .ok_or(Error::NotFound("metrics"))?;
    let by_status: serde_json::Value = row.try_get_by_index(1)?;
    Ok(Metrics {
        tenants: row.try_get_by_index(0)?,
        tenants_by_status: serde_json::from_value(by_status).unwrap_or_default(),
        jobs_running: row.try_get_by_index(2)?,
        job_items_pending: row.try_get_by_index(3)?,
        jobs_last_day: row.try_get_by_index(4)?,
        database_bytes: row.try_get_by_index(5)?,
        database_connections: row.try_get_by_index(6)?,
    })
}
