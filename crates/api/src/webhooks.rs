//! Webhook deliveries: signing as the Standard Webhooks specification
//! says, refusing targets inside the network, and the dispatcher every
//! server runs.
//!
//! Finding work: tenant triggers append to `public.event_signals` when they
//! make deliveries. A dispatcher takes due signals with `FOR UPDATE SKIP
//! LOCKED` (two dispatchers never take the same), then claims that
//! tenant's due deliveries the same way, marking them PROCESSING until a
//! lease ends and leaving a signal due at the lease's end: if the process
//! dies mid-delivery, another takes the deliveries up when the lease ends.
//! Failures are retried with exponential backoff and jitter until
//! `events.max_attempts`, then FAILED (the dead letter). One record's
//! deliveries to one endpoint go in order: a delivery is claimed only when
//! none before it of the same record and endpoint waits or is in flight. Delivery is at
//! least once: a receiver deduplicates by `webhook-id`, which stays the same
//! across attempts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement};
use serde::Deserialize;
use sha2::Sha256;
use tenancy::{Registry, TenantTx, stmt};

use crate::client_ip::Cidr;

/// `[events]`
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Address blocks webhook targets may resolve to although they are
    /// loopback, private, link-local or otherwise inside the network (for
    /// receivers on the same network; the tests allow 127.0.0.1).
    pub allow_targets: Vec<String>,
    /// Attempts before a delivery is FAILED.
    pub max_attempts: i32,
    /// How often a dispatcher looks for due work when nothing signals it.
    pub poll_interval_ms: u64,
    /// How long one delivery attempt may take.
    pub delivery_timeout_ms: u64,
}

/// Signs `body` for message `id` at `timestamp` (Unix seconds) with
/// `secret` (`whsec_` and base64): the `webhook-signature` header value.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// A new endpoint secret.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Whether `ip` is inside the network: loopback, private, link-local
/// (cloud metadata services live there), unspecified, multicast,
/// carrier-grade NAT or unique-local.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Why a target is refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("must be an http or https URL")]
    Scheme,
    #[error("has no host")]
    Host,
    #[error("does not resolve")]
    Unresolved,
    #[error("resolves to {0}, inside the network, which events.allow_targets does not allow")]
    Internal(IpAddr),
}

/// Resolves `url` and checks every address it resolves to; the address to
/// connect to (so a name cannot resolve elsewhere between check and use).
pub async fn check_target(
    url: &reqwest::Url,
    allowed: &[Cidr],
) -> Result<(String, SocketAddr), TargetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    let host = url.host_str().ok_or(TargetError::Host)?.to_owned();
    let port = url.port_or_known_default().ok_or(TargetError::Host)?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| TargetError::Unresolved)?
        .collect();
    let first = *addrs.first().ok_or(TargetError::Unresolved)?;
    for a in &addrs {
        if internal(a.ip()) && !allowed.iter().any(|c| c.contains(a.ip())) {
            return Err(TargetError::Internal(a.ip()));
        }
    }
    Ok((host, first))
}

/// The parsed `events.allow_targets`.
pub fn allowed(settings: &EventSettings) -> Result<Vec<Cidr>, String> {
    settings
        .allow_targets
        .iter()
        .map(|t| Cidr::parse(t))
        .collect()
}

#[derive(FromQueryResult)]
struct Claimed {
    id: i64,
    attempts: i32,
    url: String,
    secret: String,
    payload: serde_json::Value,
}

/// What one attempt came to.
struct Outcome {
    id: i64,
    attempts: i32,
    code: Option<u16>,
    latency_ms: f64,
    error: Option<String>,
}

/// A delivery `q` with none before it of the same record and endpoint
/// still waiting or in flight: the deliveries that may go now.
const FIRST_OF_ITS_RECORD: &str = "NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
     WHERE p.endpoint_id = q.endpoint_id AND p.record_id = q.record_id \
       AND p.id < q.id AND p.status IN ('PENDING', 'PROCESSING'))";

/// Deliveries one claim takes, sent concurrently.
const BATCH: i64 = 200;

/// Backoff before attempt `attempts + 1`: 1 s doubling, at most an hour,
/// with ±20 % jitter.
fn backoff(attempts: i32) -> Duration {
    let base = 2f64.powi(attempts.clamp(1, 12) - 1).min(3600.0);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    Duration::from_secs_f64(base * jitter)
}

/// Resolves webhook hosts for the dispatcher's client, refusing names
/// that resolve inside the network: the check happens at the resolution
/// the connection uses, so a name cannot resolve elsewhere in between.
struct CheckedResolver {
    allowed: Arc<Vec<Cidr>>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = Arc::clone(&self.allowed);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(TargetError::Unresolved) as _);
            }
            if let Some(a) = addrs
                .iter()
                .find(|a| internal(a.ip()) && !allowed.iter().any(|c| c.contains(a.ip())))
            {
                return Err(Box::new(TargetError::Internal(a.ip())) as _);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What the dispatcher sends with: one client, so connections to a
/// receiver are kept and reused across deliveries.
struct Sender {
    client: reqwest::Client,
    allowed: Arc<Vec<Cidr>>,
    timeout: Duration,
}

impl Sender {
    fn new(settings: &EventSettings, allowed: Vec<Cidr>) -> Result<Self, reqwest::Error> {
        let allowed = Arc::new(allowed);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(CheckedResolver {
                allowed: Arc::clone(&allowed),
            }))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            allowed,
            timeout: Duration::from_millis(settings.delivery_timeout_ms),
        })
    }

    /// Whether a URL's host, when it is an address (no resolution happens
    /// for those), is inside the network and not allowed.
    fn refused_address(&self, url: &reqwest::Url) -> Option<IpAddr> {
        let ip: IpAddr = url.host_str()?.trim_matches(['[', ']']).parse().ok()?;
        (internal(ip) && !self.allowed.iter().any(|c| c.contains(ip))).then_some(ip)
    }
}

/// The dispatcher: runs until aborted. It wakes when a tenant is signalled
/// (`wake`, from `NOTIFY strata_events`) and every `poll_interval_ms`.
pub fn spawn(
    db: DatabaseConnection,
    registry: Registry,
    settings: EventSettings,
    allowed: Vec<Cidr>,
    mut wake: tokio::sync::broadcast::Receiver<String>,
) -> Result<tokio::task::JoinHandle<()>, reqwest::Error> {
    let sender = Sender::new(&settings, allowed)?;
    Ok(tokio::spawn(async move {
        let poll = Duration::from_millis(settings.poll_interval_ms.max(10));
        let idle = async |wake: &mut tokio::sync::broadcast::Receiver<String>| {
            let _ = tokio::time::timeout(poll, wake.recv()).await;
        };
        loop {
            match paused(&db).await {
                Ok(false) => {}
                Ok(true) => {
                    tokio::time::sleep(poll).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read whether events are paused");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            }
            match take_signals(&db).await {
                Ok(schemas) if schemas.is_empty() => idle(&mut wake).await,
                Ok(schemas) => {
                    for schema in schemas {
                        if let Err(e) = drain(&db, &registry, &schema, &settings, &sender).await {
                            tracing::warn!(%schema, error = %e, "webhook deliveries failed");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read event signals");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }))
}

/// Whether an operator paused deliveries on the whole platform.
async fn paused(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    let row = tenancy::sql::rows(db, stmt("SELECT paused FROM public.event_control", [])).await?;
    Ok(row
        .first()
        .and_then(|r| r.try_get_by_index::<bool>(0).ok())
        .unwrap_or(false))
}

/// Takes due signals; the schemas they name, once each.
async fn take_signals(db: &DatabaseConnection) -> Result<Vec<String>, sea_orm::DbErr> {
    let rows = tenancy::sql::rows(
        db,
        stmt(
            "DELETE FROM public.event_signals WHERE id IN ( \
                 SELECT id FROM public.event_signals WHERE due_at <= now() \
                 ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED) \
             RETURNING schema_name",
            [],
        ),
    )
    .await?;
    let mut schemas: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .collect();
    schemas.sort();
    schemas.dedup();
    Ok(schemas)
}

/// Delivers a tenant's due deliveries, page by page.
async fn drain(
    db: &DatabaseConnection,
    registry: &Registry,
    schema: &str,
    settings: &EventSettings,
    sender: &Sender,
) -> Result<(), tenancy::Error> {
    let Some(tenant) = registry.find_by_schema(schema).await? else {
        return Ok(());
    };
    let lease = Duration::from_millis(settings.delivery_timeout_ms) * 3;
    loop {
        let tx = TenantTx::begin(db, &tenant).await?;
        // Paused by the tenant: what accumulates goes out on resume, which
        // signals the tenant again.
        let paused = tx
            .conn()
            .query_one_raw(stmt("SELECT paused FROM event_state", []))
            .await?
            .and_then(|r| r.try_get_by_index::<bool>(0).ok())
            .unwrap_or(false);
        if paused {
            tx.commit().await?;
            return Ok(());
        }
        let claimed = Claimed::find_by_statement(stmt(
            &format!(
                "UPDATE webhook_deliveries d \
                SET status = 'PROCESSING', attempts = d.attempts + 1, \
                    locked_until = now() + make_interval(secs => $1) \
               FROM (SELECT q.id FROM webhook_deliveries q \
                      WHERE q.next_at <= now() AND (q.status = 'PENDING' \
                            OR (q.status = 'PROCESSING' AND q.locked_until < now())) \
                        AND {FIRST_OF_ITS_RECORD} \
                      ORDER BY q.id LIMIT $2 FOR UPDATE OF q SKIP LOCKED) c, \
                    webhook_endpoints w, events e \
              WHERE d.id = c.id AND w.id = d.endpoint_id AND e.id = d.event_id \
             RETURNING d.id, d.attempts, w.url, w.secret, e.payload"
            ),
            [lease.as_secs_f64().into(), BATCH.into()],
        ))
        .all(tx.conn())
        .await?;
        if claimed.is_empty() {
            // Deliveries waiting for a later attempt get a signal at the
            // earliest: each signal taken leaves at most one behind. (One
            // due now is held by another dispatcher: look again shortly.)
            tx.conn()
                .execute_raw(stmt(
                    &format!(
                        "SELECT public.signal_events($1, \
                                greatest(min(q.next_at), now() + interval '200 milliseconds')) \
                           FROM webhook_deliveries q \
                          WHERE q.status = 'PENDING' AND {FIRST_OF_ITS_RECORD} \
                         HAVING min(q.next_at) IS NOT NULL"
                    ),
                    [schema.into()],
                ))
                .await?;
            tx.commit().await?;
            return Ok(());
        }
        // If this process dies, the deliveries are taken up at the lease's end.
        tx.conn()
            .execute_raw(stmt(
                "SELECT public.signal_events($1, now() + make_interval(secs => $2))",
                [schema.into(), lease.as_secs_f64().into()],
            ))
            .await?;
        tx.commit().await?;
        let outcomes = futures::future::join_all(claimed.iter().map(|c| attempt(c, sender))).await;
        record(db, &tenant, schema, settings, &outcomes).await?;
    }
}

/// One attempt of one delivery.
async fn attempt(c: &Claimed, sender: &Sender) -> Outcome {
    let started = Instant::now();
    let done = |code: Option<u16>, error: Option<String>| Outcome {
        id: c.id,
        attempts: c.attempts,
        code,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        error,
    };
    let url = match reqwest::Url::parse(&c.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(_) => {
            return done(
                None,
                Some(format!("refused target: {}", TargetError::Scheme)),
            );
        }
        Err(e) => return done(None, Some(format!("bad URL: {e}"))),
    };
    if let Some(ip) = sender.refused_address(&url) {
        return done(
            None,
            Some(format!("refused target: {}", TargetError::Internal(ip))),
        );
    }
    let id = format!("msg_{}", c.id);
    let timestamp = chrono::Utc::now().timestamp();
    let body = c.payload.to_string();
    let Some(signature) = sign(&c.secret, &id, timestamp, body.as_bytes()) else {
        return done(
            None,
            Some("the endpoint's secret is not valid base64".into()),
        );
    };
    let sent = sender
        .client
        .post(url)
        .timeout(sender.timeout)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => done(Some(res.status().as_u16()), None),
        Ok(res) => done(
            Some(res.status().as_u16()),
            Some(format!("answered {}", res.status())),
        ),
        Err(e) => done(None, Some(error_chain(&e))),
    }
}

/// An error with its causes (a refused target shows as the cause of a
/// connect error).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Records outcomes: done, to retry later, or failed for good.
async fn record(
    db: &DatabaseConnection,
    tenant: &tenancy::Tenant,
    schema: &str,
    settings: &EventSettings,
    outcomes: &[Outcome],
) -> Result<(), tenancy::Error> {
    let mut earliest: Option<Duration> = None;
    let (mut ids, mut statuses, mut codes, mut latencies, mut errors, mut delays) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for o in outcomes {
        let (status, delay) = match (&o.error, o.attempts >= settings.max_attempts) {
            (None, _) => ("COMPLETED", None),
            (Some(_), true) => ("FAILED", None),
            (Some(_), false) => ("PENDING", Some(backoff(o.attempts))),
        };
        if let Some(d) = delay {
            earliest = Some(earliest.map_or(d, |e| e.min(d)));
        }
        ids.push(o.id);
        statuses.push(status.to_owned());
        // No nulls in these arrays: 0 and '' stand for none.
        codes.push(o.code.map_or(0, i32::from));
        latencies.push(o.latency_ms);
        errors.push(o.error.clone().unwrap_or_default());
        delays.push(delay.unwrap_or_default().as_secs_f64());
    }
    let tx = TenantTx::begin(db, tenant).await?;
    tx.conn()
        .execute_raw(stmt(
            "UPDATE webhook_deliveries d SET status = o.status, locked_until = NULL, \
                 response_code = nullif(o.code, 0), latency_ms = o.latency, \
                 last_error = nullif(o.error, ''), \
                 next_at = now() + make_interval(secs => o.delay), \
                 completed_at = CASE WHEN o.status = 'COMPLETED' THEN now() END \
             FROM unnest($1::bigint[], $2::text[], $3::int[], $4::float8[], $5::text[], \
                         $6::float8[]) AS o(id, status, code, latency, error, delay) \
             WHERE d.id = o.id",
            [
                ids.into(),
                statuses.into(),
                codes.into(),
                latencies.into(),
                errors.into(),
                delays.into(),
            ],
        ))
        .await?;
    if let Some(d) = earliest {
        tx.conn()
            .execute_raw(stmt(
                "SELECT public.signal_events($1, now() + make_interval(secs => $2))",
                [schema.into(), d.as_secs_f64().into()],
            ))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Retries a FAILED delivery (Administrators, through the API).
pub async fn retry(
    conn: &impl ConnectionTrait,
    schema: &str,
    id: i64,
) -> Result<bool, sea_orm::DbErr> {
    let res = conn
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, next_at = now(), \
                 last_error = NULL WHERE id = $1 AND status = 'FAILED'",
            [id.into()],
        ))
        .await?;
    if res.rows_affected() == 0 {
        return Ok(false);
    }
    conn.execute_raw(stmt(
        "SELECT public.signal_events($1, now())",
        [schema.into()],
    ))
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_example() {
        // The Standard Webhooks specification's test vector.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    /// The dispatcher's resolver refuses a name that resolves inside the
    /// network unless its block is allowed.
    #[tokio::test]
    async fn names_resolving_inside_the_network_are_refused_at_connection() {
        use reqwest::dns::Resolve;
        let name = |n: &str| n.parse::<reqwest::dns::Name>().expect("name");
        let refusing = CheckedResolver {
            allowed: Arc::new(vec![]),
        };
        let err = refusing
            .resolve(name("localhost"))
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("inside the network"), "{err}");
        let allowing = CheckedResolver {
            allowed: Arc::new(vec![
                Cidr::parse("127.0.0.0/8").expect("cidr"),
                Cidr::parse("::1/128").expect("cidr"),
            ]),
        };
        let addrs: Vec<SocketAddr> = allowing
            .resolve(name("localhost"))
            .await
            .expect("allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            assert!(internal(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!internal(ip.parse().expect("ip")), "{ip}");
        }
    }
}
