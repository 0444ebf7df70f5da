//! Where usage and quota counters live: Redis when the gateway has one, so
//! every replica counts into the same numbers; this process's memory
//! without it, or while it is unreachable (each replica then counts alone
//! until Redis is back).
//!
//! Redis keys (all expire):
//! - `grocery:usage:<client>:<YYYYMMDDHH>`: a hash of `r:<document>`
//!   (requests) and `e:<document>` (errors) for one UTC hour, kept
//!   [`RETENTION`];
//! - `grocery:quota:<client>:<document>:<day|month>:<window>`: requests in
//!   the quota window, until the window ends;
//! - `grocery:quota:overrides`: ADMIN's limits, field
//!   `<client>\u{1f}<document>\u{1f}<period>`.
//!
//! A request is counted and checked against its quotas by one Lua script,
//! so replicas never both let the last allowed request through.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};

use super::quota::{Item, Period, Quotas, Standing, Window};

/// How long hourly usage is kept.
pub const RETENTION: Duration = Duration::from_secs(40 * 24 * 3600);

const OVERRIDES: &str = "grocery:quota:overrides";

/// Counts a request in its hour and in its quota windows, unless one of
/// them is full. `KEYS`: the hour's hash, the overrides, the windows.
/// `ARGV`: the hour's field and expiry, then per window the override
/// field, the manifest's limit (-1: none) and the window's expiry. Answers
/// each window's limit (-1: none) and its count with this request.
const COUNT: &str = r"
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
local out = {}
local over = false
for i = 3, #KEYS do
  local a = 3 + (i - 3) * 3
  local limit = tonumber(redis.call('HGET', KEYS[2], ARGV[a]) or ARGV[a + 1])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0') + 1
  if limit >= 0 and used > limit then over = true end
  out[#out + 1] = limit
  out[#out + 1] = used
end
if not over then
  for i = 3, #KEYS do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[3 + (i - 3) * 3 + 2])
  end
end
return out
";

/// One client's requests and errors of one document in one hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HourUsage {
    pub document: String,
    pub hour: DateTime<Utc>,
    pub requests: u64,
    pub errors: u64,
}

type Key = (Arc<str>, Arc<str>);

/// Requests and errors by document.
type ByDocument = HashMap<Arc<str>, [u64; 2]>;

/// The counters of one process.
#[derive(Default)]
struct Memory {
    /// By client and hour (seconds since the epoch), then document: requests, errors.
    hours: BTreeMap<(Arc<str>, i64), ByDocument>,
    /// By client, document and period: the window's tag and its count.
    windows: HashMap<(Key, Period), (String, u64)>,
    overrides: HashMap<(Key, Period), u32>,
}

/// The counters, in Redis or in memory.
pub struct Store {
    redis: Option<redis::aio::ConnectionManager>,
    memory: Mutex<Memory>,
    redis_down: AtomicBool,
}

/// The start of the UTC hour holding `now`, in seconds since the epoch.
pub fn hour_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(3600) * 3600
}

fn hour_key(client: &str, hour: i64) -> String {
    let at = DateTime::from_timestamp(hour, 0).unwrap_or_default();
    format!("grocery:usage:{client}:{}", at.format("%Y%m%d%H"))
}

fn override_field(client: &str, document: &str, period: Period) -> String {
    format!("{client}\u{1f}{document}\u{1f}{}", period.label())
}

/// Why ADMIN's change was not made.
#[derive(Debug)]
pub struct Unavailable;

impl Store {
    pub fn new(redis: Option<redis::aio::ConnectionManager>) -> Self {
        Self {
            redis,
            memory: Mutex::default(),
            redis_down: AtomicBool::new(false),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs the first failure of an outage.
    fn down(&self, err: &redis::RedisError) {
        if !self.redis_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(%err, "Redis is unavailable for partner usage and quotas; counting in this process until it is back");
        }
    }

    /// Counts one request of `document` by `client` at `now` (hour `hour`)
    /// and says where it stands against its quotas; over one, nothing but
    /// the request itself is counted.
    pub async fn count(
        &self,
        client: &str,
        document: &Arc<str>,
        quotas: &Quotas,
        now: DateTime<Utc>,
        hour: i64,
    ) -> Standing {
        let windows: Vec<(Period, Window)> = Period::ALL
            .into_iter()
            .map(|p| (p, p.window(now)))
            .collect();
        let answer = match self
            .count_redis(client, document, quotas, &windows, now, hour)
            .await
        {
            Some(answer) => answer,
            None => self.count_memory(client, document, quotas, &windows, now, hour),
        };
        Standing {
            items: windows
                .iter()
                .zip(answer)
                .filter_map(|((period, window), (limit, used))| {
                    Some(Item {
                        period: *period,
                        limit: u64::try_from(limit).ok()?,
                        used,
                        reset: window.remaining(now),
                        window: window.length(),
                    })
                })
                .collect(),
        }
    }

    async fn count_redis(
        &self,
        client: &str,
        document: &str,
        quotas: &Quotas,
        windows: &[(Period, Window)],
        now: DateTime<Utc>,
        hour: i64,
    ) -> Option<Vec<(i64, u64)>> {
        let mut redis = self.redis.clone()?;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COUNT)
            .arg(2 + windows.len())
            .arg(hour_key(client, hour))
            .arg(OVERRIDES);
        for (period, window) in windows {
            cmd.arg(format!(
                "grocery:quota:{client}:{document}:{}:{}",
                period.label(),
                window.tag
            ));
        }
        cmd.arg(format!("r:{document}")).arg(RETENTION.as_secs());
        for (period, window) in windows {
            let limit = quotas.limit(document, *period).map_or(-1, i64::from);
            cmd.arg(override_field(client, document, *period))
                .arg(limit)
                .arg(window.remaining(now) + 60);
        }
        match cmd.query_async::<Vec<i64>>(&mut redis).await {
            Ok(flat) if flat.len() == 2 * windows.len() => {
                self.redis_down.store(false, Ordering::Relaxed);
                Some(flat.chunks(2).map(|c| (c[0], c[1].max(0) as u64)).collect())
            }
            Ok(_) => None,
            Err(err) => {
                self.down(&err);
                None
            }
        }
    }

    fn count_memory(
        &self,
        client: &str,
        document: &Arc<str>,
        quotas: &Quotas,
        windows: &[(Period, Window)],
        now: DateTime<Utc>,
        hour: i64,
    ) -> Vec<(i64, u64)> {
        let mut memory = self.memory();
        let client: Arc<str> = client.into();
        memory.add(&client, document, hour, 0, now);
        let key: Key = (client, document.clone());
        let answer: Vec<(i64, u64)> = windows
            .iter()
            .map(|(period, window)| {
                let limit = memory
                    .overrides
                    .get(&(key.clone(), *period))
                    .copied()
                    .or_else(|| quotas.limit(document, *period))
                    .map_or(-1, i64::from);
                let used = match memory.windows.get(&(key.clone(), *period)) {
                    Some((tag, n)) if *tag == window.tag => *n,
                    _ => 0,
                };
                (limit, used + 1)
            })
            .collect();
        let over = answer
            .iter()
            .any(|(limit, used)| *limit >= 0 && *used > *limit as u64);
        if !over {
            for ((period, window), (_, used)) in windows.iter().zip(&answer) {
                memory
                    .windows
                    .insert((key.clone(), *period), (window.tag.clone(), *used));
            }
        }
        answer
    }

    /// Counts an error of a request counted in `hour`.
    pub async fn error(&self, client: &str, document: &Arc<str>, hour: i64) {
        if let Some(mut redis) = self.redis.clone() {
            let mut cmd = redis::cmd("HINCRBY");
            cmd.arg(hour_key(client, hour))
                .arg(format!("e:{document}"))
                .arg(1);
            match cmd.query_async::<i64>(&mut redis).await {
                Ok(_) => return,
                Err(err) => self.down(&err),
            }
        }
        self.memory()
            .add(&client.into(), document, hour, 1, Utc::now());
    }

    /// `client`'s usage in the hours from the one holding `from` to the one
    /// holding `to`, by hour then document.
    pub async fn hours(
        &self,
        client: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourUsage>, Unavailable> {
        let hours: Vec<i64> = (hour_of(from)..=hour_of(to)).step_by(3600).collect();
        let mut rows = Vec::new();
        let at = |hour: i64| DateTime::from_timestamp(hour, 0).unwrap_or_default();
        if let Some(mut redis) = self.redis.clone() {
            let mut pipe = redis::pipe();
            for hour in &hours {
                pipe.cmd("HGETALL").arg(hour_key(client, *hour));
            }
            let answers: Vec<HashMap<String, u64>> = match pipe.query_async(&mut redis).await {
                Ok(answers) => answers,
                Err(err) => {
                    self.down(&err);
                    return Err(Unavailable);
                }
            };
            for (hour, fields) in hours.iter().zip(answers) {
                let mut by_document: BTreeMap<String, [u64; 2]> = BTreeMap::new();
                for (field, n) in fields {
                    let Some((kind, document)) = field.split_once(':') else {
                        continue;
                    };
                    let slot = usize::from(kind == "e");
                    by_document.entry(document.to_owned()).or_default()[slot] += n;
                }
                rows.extend(
                    by_document
                        .into_iter()
                        .map(|(document, [requests, errors])| HourUsage {
                            document,
                            hour: at(*hour),
                            requests,
                            errors,
                        }),
                );
            }
            return Ok(rows);
        }
        let memory = self.memory();
        let client: Arc<str> = client.into();
        for hour in hours {
            let Some(by_document) = memory.hours.get(&(client.clone(), hour)) else {
                continue;
            };
            let mut sorted: Vec<_> = by_document.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            rows.extend(
                sorted
                    .into_iter()
                    .map(|(document, [requests, errors])| HourUsage {
                        document: document.to_string(),
                        hour: at(hour),
                        requests: *requests,
                        errors: *errors,
                    }),
            );
        }
        Ok(rows)
    }

    /// ADMIN's limit on `document` of `client` for `period`; `None` removes
    /// it (the manifest's holds again).
    pub async fn set_override(
        &self,
        client: &str,
        document: &Arc<str>,
        period: Period,
        limit: Option<u32>,
    ) -> Result<(), Unavailable> {
        if let Some(mut redis) = self.redis.clone() {
            let field = override_field(client, document, period);
            let cmd = match limit {
                Some(limit) => redis::cmd("HSET")
                    .arg(OVERRIDES)
                    .arg(&field)
                    .arg(limit)
                    .to_owned(),
                None => redis::cmd("HDEL").arg(OVERRIDES).arg(&field).to_owned(),
            };
            return match cmd.query_async::<i64>(&mut redis).await {
                Ok(_) => Ok(()),
                Err(err) => {
                    self.down(&err);
                    Err(Unavailable)
                }
            };
        }
        let key = ((client.into(), document.clone()), period);
        let mut memory = self.memory();
        match limit {
            Some(limit) => memory.overrides.insert(key, limit),
            None => memory.overrides.remove(&key),
        };
        Ok(())
    }
}

impl Memory {
    /// Adds a request (`slot` 0) or an error (1) to `client`'s `hour`.
    fn add(
        &mut self,
        client: &Arc<str>,
        document: &Arc<str>,
        hour: i64,
        slot: usize,
        now: DateTime<Utc>,
    ) {
        let key = (client.clone(), hour);
        if !self.hours.contains_key(&key) {
            // A new hour: forget the ones past retention.
            let oldest = hour_of(now) - RETENTION.as_secs() as i64;
            self.hours.retain(|(_, h), _| *h >= oldest);
        }
        self.hours
            .entry(key)
            .or_default()
            .entry(document.clone())
            .or_default()[slot] += 1;
    }
}
