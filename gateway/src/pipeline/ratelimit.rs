//! Rate limits per user and per client IP, by operation type, with GCRA
//! (the generic cell rate algorithm): each bucket is one number, the
//! theoretical arrival time of the next request. A request is let through
//! when that time is no further ahead than the burst allows, and pushes it
//! one emission interval on.
//!
//! With Redis the buckets live there (`grocery:rl:<scope>:<kind>:<id>`) and
//! are checked and updated by one Lua script that reads Redis's own clock,
//! so every replica enforces one limit and skewed gateway clocks do not
//! matter. Without Redis, or while it is unreachable, the buckets live in
//! this process.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Which operation kind a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Query,
    Mutation,
    Subscription,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Query, Kind::Mutation, Kind::Subscription];

    /// The kind of the operation `operation_name` (or the only one) of
    /// `document`, read from its keyword without parsing the document: the
    /// rate is checked before planning, so a flood of distinct documents is
    /// refused before it costs planner time. A document this cannot read
    /// (it will fail to parse anyway) counts as a query.
    pub fn of(document: &str, operation_name: Option<&str>) -> Kind {
        let mut tokens = Tokens {
            rest: document.as_bytes(),
        }
        .peekable();
        let (mut depth, mut parens) = (0usize, 0usize);
        // Inside a definition's head (`query Q($v: T) @d`, `fragment F on
        // T`): names there are not keywords, and the next `{` is its own.
        let mut in_head = false;
        let mut first = None;
        while let Some(token) = tokens.next() {
            match token {
                b"(" => parens += 1,
                b")" => parens = parens.saturating_sub(1),
                // Argument and variable values: `{` there is an object.
                _ if parens > 0 => {}
                b"{" => {
                    if depth == 0 && !in_head {
                        // The query shorthand.
                        first.get_or_insert(Kind::Query);
                        if operation_name.is_none() {
                            return Kind::Query;
                        }
                    }
                    in_head = false;
                    depth += 1;
                }
                b"}" => depth = depth.saturating_sub(1),
                _ if depth > 0 || in_head => {}
                b"fragment" => in_head = true,
                b"query" | b"mutation" | b"subscription" => {
                    in_head = true;
                    let kind = match token {
                        b"mutation" => Kind::Mutation,
                        b"subscription" => Kind::Subscription,
                        _ => Kind::Query,
                    };
                    let name = tokens.next_if(|t| {
                        t.first()
                            .is_some_and(|b| *b == b'_' || b.is_ascii_alphabetic())
                    });
                    match operation_name {
                        None => return kind,
                        Some(wanted) if name == Some(wanted.as_bytes()) => return kind,
                        _ => {
                            first.get_or_insert(kind);
                        }
                    }
                }
                _ => {}
            }
        }
        first.unwrap_or(Kind::Query)
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Subscription => "subscription",
        }
    }
}

/// GraphQL's lexical tokens, as much as [`Kind::of`] needs: names and
/// punctuators, with strings, comments, commas and white space skipped.
struct Tokens<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let (&first, after) = self.rest.split_first()?;
            match first {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.rest = after,
                // A byte-order mark.
                0xEF if self.rest.starts_with(&[0xEF, 0xBB, 0xBF]) => self.rest = &self.rest[3..],
                b'#' => {
                    let end = self.rest.iter().position(|&b| b == b'\n' || b == b'\r');
                    self.rest = &self.rest[end.unwrap_or(self.rest.len())..];
                }
                b'"' if self.rest.starts_with(b"\"\"\"") => {
                    let body = &self.rest[3..];
                    let mut i = 0;
                    let end = loop {
                        match body.get(i..i + 3) {
                            None => break body.len(),
                            Some(b"\"\"\"") => break i + 3,
                            _ if body[i] == b'\\' && body[i..].starts_with(b"\\\"\"\"") => i += 4,
                            _ => i += 1,
                        }
                    };
                    self.rest = &body[end.min(body.len())..];
                }
                b'"' => {
                    let mut i = 1;
                    while let Some(&b) = self.rest.get(i) {
                        match b {
                            b'\\' => i += 2,
                            b'"' | b'\n' | b'\r' => break,
                            _ => i += 1,
                        }
                    }
                    self.rest = &self.rest[(i + 1).min(self.rest.len())..];
                }
                b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                    let end = self
                        .rest
                        .iter()
                        .position(|&b| !(b == b'_' || b.is_ascii_alphanumeric()))
                        .unwrap_or(self.rest.len());
                    let (name, rest) = self.rest.split_at(end);
                    self.rest = rest;
                    return Some(name);
                }
                _ => {
                    let (token, rest) = self.rest.split_at(1);
                    self.rest = rest;
                    return Some(token);
                }
            }
        }
    }
}

/// Whom a bucket counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    User,
    Ip,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Ip => "ip",
        }
    }
}

/// `per` requests each `period`, with bursts of up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Rate {
    /// Time between two requests at the sustained rate.
    fn interval(self) -> Duration {
        self.period / self.per.max(1)
    }

    /// Parses `N/s`, `N/m` or `N/h`, optionally followed by `:BURST`
    /// (default: one period's worth).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let (n, unit) = rate
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not N/s, N/m or N/h"))?;
        let per: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a count"))?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("{other:?} is not s, m or h")),
        };
        let burst = match burst {
            Some(b) => b
                .trim()
                .parse()
                .map_err(|_| format!("burst {b:?} is not a count"))?,
            None => per,
        };
        if per == 0 || burst == 0 {
            return Err(format!("{text:?}: rates and bursts start at 1"));
        }
        Ok(Self { per, period, burst })
    }
}

/// Limits by scope and operation kind; a missing entry is no limit.
#[derive(Clone, Debug, Default)]
pub struct RateLimits {
    pub rates: HashMap<(Scope, Kind), Rate>,
    /// A header holding the client's address as a proxy saw it (e.g.
    /// `x-forwarded-for`; its right-most address counts). Without it the
    /// peer address of the connection counts.
    pub ip_header: Option<axum::http::HeaderName>,
    /// Where buckets are shared between replicas.
    pub redis_url: Option<String>,
}

impl RateLimits {
    /// Limits for a public deployment: generous for people and fridges,
    /// wider still per address (many users may share one).
    pub fn standard() -> Self {
        let rate = |per, burst| Rate {
            per,
            period: Duration::from_secs(1),
            burst,
        };
        let rates = HashMap::from([
            ((Scope::User, Kind::Query), rate(100, 200)),
            ((Scope::User, Kind::Mutation), rate(20, 50)),
            ((Scope::User, Kind::Subscription), rate(5, 50)),
            ((Scope::Ip, Kind::Query), rate(1000, 2000)),
            ((Scope::Ip, Kind::Mutation), rate(200, 500)),
            ((Scope::Ip, Kind::Subscription), rate(50, 500)),
        ]);
        Self {
            rates,
            ..Default::default()
        }
    }

    /// [`RateLimits::standard`] changed by `spec`: `off` (no limits) or a
    /// comma-separated list of `SCOPE.KIND=RATE` (scope `user` or `ip`;
    /// kind `query`, `mutation`, `subscription` or `*`; rate as
    /// [`Rate::parse`] takes it, or `off`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut limits = Self::standard();
        let spec = spec.trim();
        if spec.is_empty() {
            return Ok(limits);
        }
        if spec.eq_ignore_ascii_case("off") {
            limits.rates.clear();
            return Ok(limits);
        }
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (target, rate) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not SCOPE.KIND=RATE"))?;
            let (scope, kind) = target
                .split_once('.')
                .ok_or_else(|| format!("{target:?} is not SCOPE.KIND"))?;
            let scope = match scope.trim() {
                "user" => Scope::User,
                "ip" => Scope::Ip,
                other => return Err(format!("scope {other:?} is not user or ip")),
            };
            let kinds: Vec<Kind> = match kind.trim() {
                "*" => Kind::ALL.to_vec(),
                k => vec![
                    *Kind::ALL
                        .iter()
                        .find(|kind| kind.label() == k)
                        .ok_or_else(|| {
                            format!("kind {k:?} is not query, mutation or subscription")
                        })?,
                ],
            };
            let rate = rate.trim();
            for kind in kinds {
                if rate.eq_ignore_ascii_case("off") {
                    limits.rates.remove(&(scope, kind));
                } else {
                    limits.rates.insert((scope, kind), Rate::parse(rate)?);
                }
            }
        }
        Ok(limits)
    }
}

/// A request over its limit: when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub retry_after: Duration,
}

/// Checks and updates every bucket of a request at once: all or nothing,
/// so a refused request uses up none of its buckets. `KEYS` are the buckets;
/// `ARGV` holds each one's emission interval and burst tolerance in
/// microseconds. Answers 0 when let through, else 1-based index of the
/// bucket that refused and the wait in microseconds.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  if next_tat - now > tolerance then
    return {i, next_tat - tolerance - now}
  end
  tats[i] = next_tat
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return {0, 0}
";

/// The buckets of one process: theoretical arrival times.
#[derive(Default)]
struct Local {
    tats: HashMap<String, Instant>,
    swept: Option<Instant>,
}

/// Enforces [`RateLimits`].
pub struct Limiter {
    limits: RateLimits,
    redis: Option<redis::aio::ConnectionManager>,
    local: Mutex<Local>,
    /// Refusals by scope and kind, for `/metrics`.
    refused: Mutex<HashMap<(Scope, Kind), u64>>,
    /// Whether the last Redis call failed (logged once per outage).
    redis_down: std::sync::atomic::AtomicBool,
}

impl Limiter {
    pub fn new(limits: RateLimits) -> anyhow::Result<Self> {
        let redis = match (&limits.redis_url, limits.rates.is_empty()) {
            (Some(url), false) => Some(crate::pipeline::replicas::connect(url)?),
            _ => None,
        };
        Ok(Self {
            limits,
            redis,
            local: Mutex::default(),
            refused: Mutex::default(),
            redis_down: Default::default(),
        })
    }

    /// Whether any limit is set.
    pub fn enabled(&self) -> bool {
        !self.limits.rates.is_empty()
    }

    /// The client address of a request: from the configured proxy header,
    /// else the connection's peer.
    pub fn client_ip(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<IpAddr>,
    ) -> Option<IpAddr> {
        // Only the right-most entry is the proxy's own word; earlier ones
        // are whatever the client claimed.
        let forwarded = self.limits.ip_header.as_ref().and_then(|name| {
            headers
                .get_all(name)
                .iter()
                .next_back()?
                .to_str()
                .ok()?
                .rsplit(',')
                .next()?
                .trim()
                .parse::<IpAddr>()
                .ok()
        });
        forwarded.or(peer)
    }

    /// Takes one request of `kind` from the buckets of `user` and `ip`.
    pub async fn check(
        &self,
        kind: Kind,
        user: Option<uuid::Uuid>,
        ip: Option<IpAddr>,
    ) -> Result<(), Limited> {
        let mut buckets: Vec<(Scope, String, Rate)> = Vec::with_capacity(2);
        if let (Some(user), Some(rate)) = (user, self.limits.rates.get(&(Scope::User, kind))) {
            buckets.push((
                Scope::User,
                format!("grocery:rl:user:{}:{user}", kind.label()),
                *rate,
            ));
        }
        if let (Some(ip), Some(rate)) = (ip, self.limits.rates.get(&(Scope::Ip, kind))) {
            buckets.push((
                Scope::Ip,
                format!("grocery:rl:ip:{}:{ip}", kind.label()),
                *rate,
            ));
        }
        if buckets.is_empty() {
            return Ok(());
        }
        let verdict = match self.check_redis(&buckets).await {
            Some(verdict) => verdict,
            None => self.check_local(&buckets),
        };
        if let Err(limited) = verdict
            && let Ok(mut refused) = self.refused.lock()
        {
            *refused.entry((limited.scope, kind)).or_default() += 1;
        }
        verdict
    }

    /// The Redis verdict, or `None` without Redis or while it is down.
    async fn check_redis(&self, buckets: &[(Scope, String, Rate)]) -> Option<Result<(), Limited>> {
        use std::sync::atomic::Ordering;
        let mut redis = self.redis.clone()?;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GCRA).arg(buckets.len());
        for (_, key, _) in buckets {
            cmd.arg(key);
        }
        for (_, _, rate) in buckets {
            let interval = rate.interval().as_micros() as u64;
            cmd.arg(interval).arg(interval * u64::from(rate.burst));
        }
        match cmd.query_async::<(usize, i64)>(&mut redis).await {
            Ok((0, _)) => {
                self.redis_down.store(false, Ordering::Relaxed);
                Some(Ok(()))
            }
            Ok((refused, wait)) => {
                self.redis_down.store(false, Ordering::Relaxed);
                let scope = buckets.get(refused - 1).map_or(Scope::Ip, |b| b.0);
                Some(Err(Limited {
                    scope,
                    retry_after: Duration::from_micros(wait.max(0) as u64),
                }))
            }
            Err(err) => {
                if !self.redis_down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%err, "Redis is unavailable for rate limits; counting in this process until it is back");
                }
                None
            }
        }
    }

    fn check_local(&self, buckets: &[(Scope, String, Rate)]) -> Result<(), Limited> {
        let now = Instant::now();
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Buckets whose arrival time has passed are full again: forget them,
        // at most once a second, so idle clients cost no memory.
        if local
            .swept
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(1))
        {
            local.tats.retain(|_, tat| *tat > now);
            local.swept = Some(now);
        }
        let mut next = Vec::with_capacity(buckets.len());
        for (scope, key, rate) in buckets {
            let interval = rate.interval();
            let tolerance = interval * rate.burst;
            let tat = local.tats.get(key).copied().unwrap_or(now).max(now);
            let next_tat = tat + interval;
            if next_tat - now > tolerance {
                return Err(Limited {
                    scope: *scope,
                    retry_after: next_tat - tolerance - now,
                });
            }
            next.push((key, next_tat));
        }
        for (key, tat) in next {
            local.tats.insert(key.clone(), tat);
        }
        Ok(())
    }

    /// Prometheus lines: refusals by scope and kind.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP grocery_gateway_rate_limited_total Requests refused by a rate limit, by scope and operation type.\n\
             # TYPE grocery_gateway_rate_limited_total counter\n",
        );
        let refused = self.refused.lock().map(|r| r.clone()).unwrap_or_default();
        for scope in [Scope::User, Scope::Ip] {
            for kind in Kind::ALL {
                let n = refused.get(&(scope, kind)).copied().unwrap_or(0);
                out.push_str(&format!(
                    "grocery_gateway_rate_limited_total{{scope=\"{}\",kind=\"{}\"}} {n}\n",
                    scope.label(),
                    kind.label()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod kind_tests {
    use super::Kind;

    #[test]
    fn the_kind_is_read_from_the_operation_keyword() {
        let cases: &[(&str, Option<&str>, Kind)] = &[
            ("{ me { id } }", None, Kind::Query),
            ("mutation { logout }", None, Kind::Mutation),
            (
                "subscription S { orderStatus(id: 1) }",
                None,
                Kind::Subscription,
            ),
            ("query A { a } mutation B { b }", Some("B"), Kind::Mutation),
            ("query A { a } mutation B { b }", Some("A"), Kind::Query),
            ("mutation B { b } query A { a }", Some("A"), Kind::Query),
            // Fields and arguments named like keywords are not keywords.
            (
                "query Q { mutation { subscription } } mutation M { x }",
                Some("M"),
                Kind::Mutation,
            ),
            (
                "query Q($a: String = \"mutation M\") { a }",
                Some("M"),
                Kind::Query,
            ),
            ("# mutation M { x }\nquery Q { a }", Some("Q"), Kind::Query),
            (
                "\"\"\"mutation M\"\"\" query Q { a }",
                Some("M"),
                Kind::Query,
            ),
            (
                "fragment F on Query { a } mutation M { ...F }",
                None,
                Kind::Mutation,
            ),
            ("\u{feff}mutation M { x }", None, Kind::Mutation),
            ("mutation", None, Kind::Mutation),
            ("", None, Kind::Query),
            ("{{{{", Some("X"), Kind::Query),
            ("fragment F on mutation { a } { b }", None, Kind::Query),
            (
                "query Q($v: I = {m: mutation}) @mutation { a } mutation M { b }",
                Some("M"),
                Kind::Mutation,
            ),
            ("query($v: Int) { a }", None, Kind::Query),
            ("\"unterminated", None, Kind::Query),
        ];
        for (document, name, kind) in cases {
            assert_eq!(Kind::of(document, *name), *kind, "{document:?} {name:?}");
        }
    }

    #[test]
    fn the_scan_agrees_with_the_parser_on_random_documents() {
        use rand::{Rng, SeedableRng};
        // Definitions built at random from pieces that look like keywords
        // where they are not: field names, values, strings, comments.
        let kinds = ["query", "mutation", "subscription"];
        let names = ["Q", "M", "S", "query", "mutation"];
        let fields = [
            "a",
            "query",
            "mutation { subscription }",
            "b(x: {m: mutation})",
            "c(s: \"{ mutation }\")",
            "# mutation M {\n d",
            "...F",
            "e @include(if: true)",
            "f(s: \"\"\"}\"\"\")",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut checked = 0;
        for _ in 0..5_000 {
            let mut document = String::new();
            for _ in 0..rng.gen_range(1..4) {
                let selection = format!(
                    "{{ {} {} }}",
                    fields[rng.gen_range(0..fields.len())],
                    fields[rng.gen_range(0..fields.len())]
                );
                match rng.gen_range(0..5) {
                    0 => document.push_str(&selection),
                    1 => document.push_str(&format!("fragment F on mutation {selection}")),
                    _ => {
                        let kind = kinds[rng.gen_range(0..kinds.len())];
                        let name = if rng.gen_bool(0.8) {
                            names[rng.gen_range(0..names.len())]
                        } else {
                            ""
                        };
                        let head = match rng.gen_range(0..3) {
                            0 => "",
                            1 => "($v: In = {k: mutation})",
                            _ => " @query",
                        };
                        document.push_str(&format!("{kind} {name}{head} {selection}"));
                    }
                }
                document.push_str(if rng.gen_bool(0.5) { "\n" } else { ", " });
            }
            let Ok(parsed) = graphql_tools::parser::parse_query::<String>(&document) else {
                continue;
            };
            use graphql_tools::parser::query::{Definition, OperationDefinition as Op};
            for definition in &parsed.definitions {
                let Definition::Operation(op) = definition else {
                    continue;
                };
                let (name, kind) = match op {
                    Op::SelectionSet(_) => (None, Kind::Query),
                    Op::Query(q) => (q.name.clone(), Kind::Query),
                    Op::Mutation(m) => (m.name.clone(), Kind::Mutation),
                    Op::Subscription(s) => (s.name.clone(), Kind::Subscription),
                };
                let names = parsed
                    .definitions
                    .iter()
                    .filter(|d| matches!(d, Definition::Operation(_)))
                    .count();
                let named = |wanted: &Option<String>| {
                    parsed
                        .definitions
                        .iter()
                        .filter(|d| match d {
                            Definition::Operation(Op::Query(q)) => &q.name == wanted,
                            Definition::Operation(Op::Mutation(m)) => &m.name == wanted,
                            Definition::Operation(Op::Subscription(s)) => &s.name == wanted,
                            _ => false,
                        })
                        .count()
                };
                if name.is_some() && named(&name) > 1 {
                    continue;
                }
                if name.is_some() || names == 1 {
                    let asked = if names == 1 { None } else { name.as_deref() };
                    assert_eq!(Kind::of(&document, asked), kind, "{document:?} {asked:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 2_000, "only {checked} operations checked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_burst() {
        assert_eq!(
            Rate::parse("10/s").unwrap(),
            Rate {
                per: 10,
                period: Duration::from_secs(1),
                burst: 10
            }
        );
        assert_eq!(Rate::parse("60/m:5").unwrap().burst, 5);
        assert!(Rate::parse("0/s").is_err());
        assert!(Rate::parse("10/d").is_err());
    }

    #[test]
    fn specs_change_the_standard_limits() {
        let limits = RateLimits::parse("user.mutation=2/s:3, ip.*=off").unwrap();
        assert_eq!(
            limits.rates[&(Scope::User, Kind::Mutation)],
            Rate::parse("2/s:3").unwrap()
        );
        assert!(limits.rates.contains_key(&(Scope::User, Kind::Query)));
        assert!(!limits.rates.keys().any(|(s, _)| *s == Scope::Ip));
        assert!(RateLimits::parse("off").unwrap().rates.is_empty());
        assert!(RateLimits::parse("team.query=1/s").is_err());
    }

    #[tokio::test]
    async fn local_buckets_allow_the_burst_then_refuse_with_a_wait() {
        let limits = RateLimits {
            rates: HashMap::from([((Scope::User, Kind::Query), Rate::parse("1/m:3").unwrap())]),
            ..Default::default()
        };
        let limiter = Limiter::new(limits).unwrap();
        let user = Some(uuid::Uuid::new_v4());
        for _ in 0..3 {
            limiter.check(Kind::Query, user, None).await.unwrap();
        }
        let refused = limiter.check(Kind::Query, user, None).await.unwrap_err();
        assert_eq!(refused.scope, Scope::User);
        assert!(
            refused.retry_after > Duration::from_secs(50)
                && refused.retry_after <= Duration::from_secs(60),
            "{refused:?}"
        );
        // Other users and other kinds have buckets of their own.
        limiter
            .check(Kind::Query, Some(uuid::Uuid::new_v4()), None)
            .await
            .unwrap();
        limiter.check(Kind::Mutation, user, None).await.unwrap();
        assert!(
            limiter
                .render()
                .contains("grocery_gateway_rate_limited_total{scope=\"user\",kind=\"query\"} 1")
        );
    }
}
