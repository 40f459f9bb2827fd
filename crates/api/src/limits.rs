//! Request limits: rates per tenant, per user (or client address) and for
//! sign-up, kept in Redis so every server instance shares them (GCRA, one
//! script call per request), and a cap on how many requests of one tenant
//! use the database at once in this process, so one tenant cannot take the
//! whole pool.
//!
//! Answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` for the tightest bucket; past a rate the answer is 429
//! with `Retry-After`. If Redis is unreachable, rates are not enforced
//! (logged as a warning): a lost Redis must not stop the API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::ApiError;
use crate::kv::Kv;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Rates are enforced (the concurrency cap always is).
    pub enabled: bool,
    /// Requests per minute of one tenant, all callers together, and burst.
    pub tenant_per_minute: u32,
    pub tenant_burst: u32,
    /// Requests per minute of one user (or, signed out, client address).
    pub user_per_minute: u32,
    pub user_burst: u32,
    /// Sign-ups per hour from one client address, and burst.
    pub signup_per_hour: u32,
    pub signup_burst: u32,
    /// Requests of one tenant in flight at once in one server process; 0
    /// means four per CPU core, at most half the database pool.
    pub tenant_concurrency: u32,
    /// Of those, requests with large bodies (over 64 KiB, such as sync
    /// pushes); 0 means one per CPU core.
    pub tenant_large_concurrency: u32,
}

/// Bodies above this count against `tenant_large_concurrency`.
pub const LARGE_BODY: u64 = 64 * 1024;

/// A rate: `count` per `period`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Rate {
    fn interval_ms(&self) -> f64 {
        self.period.as_millis() as f64 / f64::from(self.count.max(1))
    }
}

/// What taking one request from some buckets found, for the tightest.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until a refused request may be retried.
    pub retry_after_secs: u64,
}

/// GCRA over several keys at once, taking up to `ARGV[1]` requests: as
/// many as every bucket has room for, from all of them, or none.
/// KEYS: the buckets. ARGV[1]: how many to take at most; then per bucket
/// the emission interval and the burst tolerance, in milliseconds.
/// Returns how many were taken (0: refused), the index of the tightest
/// bucket, its remaining requests after the take, its reset time and, when
/// refused, its retry time (ms).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local want = tonumber(ARGV[1])
local take, tightest = want, 1
local tats, intervals, tolerances = {}, {}, {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  tats[i], intervals[i], tolerances[i] = tat, interval, tolerance
  -- Requests this bucket admits now.
  local room = math.floor((now + tolerance + interval - tat) / interval)
  if room < take then
    take, tightest = math.max(room, 0), i
  end
end
local interval, tolerance = intervals[tightest], tolerances[tightest]
if take < 1 then
  local wait = tats[tightest] + interval - tolerance - interval - now
  return {0, tightest, 0, math.ceil(tats[tightest] - now), math.ceil(math.max(wait, 1))}
end
for i, key in ipairs(KEYS) do
  local new_tat = tats[i] + take * intervals[i]
  redis.call('SET', key, new_tat, 'PX', math.ceil(new_tat - now) + 1)
  tats[i] = new_tat
end
local left = math.floor((now + tolerance + interval - tats[tightest]) / interval)
return {take, tightest, math.max(left, 0), math.ceil(tats[tightest] - now), 0}
";

/// Takes up to `want` requests from each of `buckets` (key, rate): how
/// many were taken (0 when refused) and the tightest bucket's state.
pub async fn take(
    kv: &Kv,
    buckets: &[(String, Rate)],
    want: u32,
) -> Result<(u32, Decision), ApiError> {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    let script = SCRIPT.get_or_init(|| redis::Script::new(GCRA));
    let mut invocation = script.prepare_invoke();
    invocation.arg(want.max(1));
    for (key, rate) in buckets {
        let interval = rate.interval_ms();
        invocation
            .key(key)
            .arg(interval)
            .arg(interval * f64::from(rate.burst.max(1) - 1));
    }
    let mut conn = kv.conn().await?;
    let (taken, tightest, remaining, reset_ms, retry_ms): (i64, usize, i64, i64, i64) =
        invocation.invoke_async(&mut conn).await?;
    let rate = buckets
        .get(tightest.saturating_sub(1))
        .map(|(_, r)| *r)
        .ok_or_else(|| ApiError::Internal("rate limit script answered oddly".into()))?;
    Ok((
        taken.max(0) as u32,
        Decision {
            allowed: taken > 0,
            limit: rate.burst,
            remaining: remaining.clamp(0, i64::from(rate.burst)) as u32,
            reset_secs: (reset_ms.max(0) as u64).div_ceil(1000),
            retry_after_secs: (retry_ms.max(0) as u64).div_ceil(1000).max(1),
        },
    ))
}

/// Requests a process takes from Redis at once for one caller and keeps
/// for at most [`LEASE_FOR`]: a tenth of a second's worth of the tightest
/// rate, at most a tenth of its burst, at least one. A busy caller costs
/// one Redis call per lease instead of one per request; tokens a lease
/// does not use are lost, which only makes the limit stricter.
fn lease_size(buckets: &[(String, Rate)]) -> u32 {
    buckets
        .iter()
        .map(|(_, r)| {
            let per_tenth = f64::from(r.count) / r.period.as_secs_f64() / 10.0;
            (per_tenth as u32).min(r.burst / 10).max(1)
        })
        .min()
        .unwrap_or(1)
}

const LEASE_FOR: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Lease {
    left: u32,
    until: Option<std::time::Instant>,
    decision: Option<Decision>,
    /// Redis failed: not asked again (rates not enforced) until then.
    failed_until: Option<std::time::Instant>,
}

/// Requests taken from Redis and not yet spent, per set of buckets. One
/// request at a time refills a caller's lease; the caller's others wait
/// for it instead of each asking Redis.
#[derive(Default)]
pub struct Leases(Mutex<HashMap<String, Arc<tokio::sync::Mutex<Lease>>>>);

impl Leases {
    /// Admits one request against `buckets`, from a lease or from Redis.
    pub async fn admit(&self, kv: &Kv, buckets: &[(String, Rate)]) -> Result<Decision, ApiError> {
        let key = buckets
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let lease = {
            let mut leases = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if leases.len() > 100_000 {
                // Drop leases no request is using.
                leases.retain(|_, l| Arc::strong_count(l) > 1);
            }
            Arc::clone(leases.entry(key).or_default())
        };
        let mut lease = lease.lock().await;
        let now = std::time::Instant::now();
        if lease.left > 0
            && lease.until.is_some_and(|u| u > now)
            && let Some(mut d) = lease.decision
        {
            lease.left -= 1;
            d.remaining += lease.left;
            return Ok(d);
        }
        if lease.failed_until.is_some_and(|u| u > now) {
            return Err(ApiError::Unavailable("redis"));
        }
        let (taken, decision) = match take(kv, buckets, lease_size(buckets)).await {
            Ok(taken) => taken,
            Err(err) => {
                lease.failed_until = Some(now + Duration::from_secs(1));
                return Err(err);
            }
        };
        *lease = Lease {
            left: taken.saturating_sub(1),
            until: Some(now + LEASE_FOR),
            decision: Some(decision),
            failed_until: None,
        };
        let mut d = decision;
        d.remaining += lease.left;
        Ok(d)
    }
}

/// Per-tenant caps on requests in flight in this process: all of a
/// tenant's requests, and, tighter, those with large bodies, which cost
/// the most CPU and memory. Small requests of one tenant never wait
/// behind its large ones beyond the first cap.
pub struct Concurrency {
    per_tenant: usize,
    large_per_tenant: usize,
    tenants: Mutex<HashMap<Uuid, Arc<Turns>>>,
    wait: Duration,
}

struct Turns {
    any: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

/// A request's turn; held until it is answered.
pub struct Turn {
    _any: OwnedSemaphorePermit,
    _large: Option<OwnedSemaphorePermit>,
}

impl Concurrency {
    pub fn new(per_tenant: usize, large_per_tenant: usize, wait: Duration) -> Self {
        let per_tenant = per_tenant.max(1);
        Self {
            per_tenant,
            large_per_tenant: large_per_tenant.clamp(1, per_tenant),
            tenants: Mutex::new(HashMap::new()),
            wait,
        }
    }

    /// From `[limits]` and the pool size: the defaults are four requests
    /// per core (at most half the pool) and one large one per core.
    pub fn from_settings(settings: &LimitSettings, pool_size: u32, wait: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let any = match settings.tenant_concurrency {
            0 => (4 * cores).min(pool_size as usize / 2),
            n => n as usize,
        };
        let large = match settings.tenant_large_concurrency {
            0 => cores,
            n => n as usize,
        };
        Self::new(any, large, wait)
    }

    /// A turn for one request of `tenant`; 503 if none frees up in time.
    pub async fn enter(&self, tenant: Uuid, large: bool) -> Result<Turn, ApiError> {
        let turns = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            // Idle tenants' semaphores are dropped now and then.
            if tenants.len() > 10_000 {
                tenants.retain(|_, t| t.any.available_permits() < self.per_tenant);
            }
            Arc::clone(tenants.entry(tenant).or_insert_with(|| {
                Arc::new(Turns {
                    any: Arc::new(Semaphore::new(self.per_tenant)),
                    large: Arc::new(Semaphore::new(self.large_per_tenant)),
                })
            }))
        };
        let take = async {
            let large = match large {
                true => Some(Arc::clone(&turns.large).acquire_owned().await.ok()?),
                false => None,
            };
            let any = Arc::clone(&turns.any).acquire_owned().await.ok()?;
            Some(Turn {
                _any: any,
                _large: large,
            })
        };
        match tokio::time::timeout(self.wait, take).await {
            Ok(Some(turn)) => Ok(turn),
            _ => Err(ApiError::Unavailable("tenant capacity")),
        }
    }
}

fn rates(settings: &LimitSettings) -> (Rate, Rate, Rate) {
    let minute = Duration::from_secs(60);
    (
        Rate {
            count: settings.tenant_per_minute,
            period: minute,
            burst: settings.tenant_burst,
        },
        Rate {
            count: settings.user_per_minute,
            period: minute,
            burst: settings.user_burst,
        },
        Rate {
            count: settings.signup_per_hour,
            period: Duration::from_secs(3600),
            burst: settings.signup_burst,
        },
    )
}

/// The path of the sign-up route, limited per address on its own.
pub const SIGNUP_PATH: &str = "/api/v1/platform/signup";

/// The buckets a request draws from.
fn buckets(
    state: &AppState,
    req: &ServiceRequest,
    tenant: Option<Uuid>,
    client: Option<IpAddr>,
) -> Vec<(String, Rate)> {
    let (tenant_rate, user_rate, signup_rate) = rates(&state.limits);
    let claims = crate::auth::user::bearer(req.request()).and_then(|t| state.tokens.verify(t));
    if let Some(c) = &claims {
        // Checked once: the extractors take it from here.
        req.extensions_mut().insert(c.clone());
    }
    let who = claims.map_or_else(
        || {
            format!(
                "address:{}",
                client.map_or("unknown".into(), |a| a.to_string())
            )
        },
        |c| format!("user:{}:{}", c.tid, c.sub),
    );
    let mut out = vec![(state.kv.key(&format!("rate:{who}")), user_rate)];
    if let Some(tenant) = tenant {
        out.push((state.kv.key(&format!("rate:tenant:{tenant}")), tenant_rate));
    } else if req.path() == SIGNUP_PATH {
        let address = client.map_or("unknown".into(), |a| a.to_string());
        out.push((state.kv.key(&format!("rate:signup:{address}")), signup_rate));
    }
    out
}

fn set_headers(headers: &mut actix_web::http::header::HeaderMap, d: &Decision) {
    for (name, value) in [
        ("ratelimit-limit", d.limit as u64),
        ("ratelimit-remaining", u64::from(d.remaining)),
        ("ratelimit-reset", d.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// Whether a request's body is large: declared over [`LARGE_BODY`], or
/// sent without a declared length.
fn is_large(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    match headers
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) => n > LARGE_BODY,
        None => headers.contains_key(actix_web::http::header::TRANSFER_ENCODING),
    }
}

/// Applies the rates and the tenant's concurrency cap to a request (after
/// the tenant is resolved).
pub async fn limit_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()).into());
    };
    let tenant = req.extensions().get::<CurrentTenant>().map(|t| t.0.id());
    let decision = if state.limits.enabled {
        let client = state.proxies.client(req.request());
        let buckets = buckets(&state, &req, tenant, client);
        match state.leases.admit(&state.kv, &buckets).await {
            Ok(d) => Some(d),
            Err(err) => {
                tracing::warn!(error = %err, "rate limits not enforced: Redis unreachable");
                None
            }
        }
    } else {
        None
    };
    if let Some(d) = decision.filter(|d| !d.allowed) {
        let mut res = actix_web::ResponseError::error_response(&ApiError::TooManyRequests {
            retry_after: d.retry_after_secs,
        });
        set_headers(res.headers_mut(), &d);
        return Err(actix_web::error::InternalError::from_response("rate limited", res).into());
    }
    let _turn = match tenant {
        Some(id) => Some(state.concurrency.enter(id, is_large(&req)).await?),
        None => None,
    };
    let mut res = next.call(req).await?;
    if let Some(d) = decision {
        set_headers(res.headers_mut(), &d);
    }
    Ok(res)
}
