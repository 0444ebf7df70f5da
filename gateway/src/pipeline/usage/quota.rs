//! Quotas: how many requests a client may make of one of its trusted
//! documents per UTC day or per UTC calendar month.
//!
//! They are set in the client's manifest (`"quotas": {"<document name or
//! id>": {"day": 1000}, "*": {"month": 20000}}`; `*` holds for every
//! document without an entry of its own, period by period) and by ADMIN at
//! run time ([`super::Usage::set_quota`]), which overrides the manifest.
//! Each request reports where it stands in the IETF draft's fields
//! (draft-ietf-httpapi-ratelimit-headers-10): `RateLimit-Policy` names each
//! quota (`"day";q=1000;w=86400`) and `RateLimit` what remains of it
//! (`"day";r=42;t=3600`, `t` seconds until the window ends); a request over
//! a quota is refused with `RATE_LIMITED`, 429 and `Retry-After`.

use std::{collections::HashMap, fmt, sync::Arc};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, de};

/// The length of a quota's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub const ALL: [Period; 2] = [Period::Day, Period::Month];

    /// Its name in manifests, in GraphQL (upper case) and in the headers.
    pub fn label(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// `day`/`DAY` or `month`/`MONTH`.
    pub fn parse(text: &str) -> Option<Self> {
        Period::ALL
            .into_iter()
            .find(|p| p.label().eq_ignore_ascii_case(text))
    }

    /// The window of this period that holds `now`.
    pub fn window(self, now: DateTime<Utc>) -> Window {
        let date = now.date_naive();
        let (start, end, tag) = match self {
            Period::Day => (
                date,
                date.succ_opt().unwrap_or(date),
                date.format("%Y%m%d").to_string(),
            ),
            Period::Month => {
                let first = NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap_or(date);
                let next = if date.month() == 12 {
                    NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
                };
                (first, next.unwrap_or(date), date.format("%Y%m").to_string())
            }
        };
        let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
        Window {
            tag,
            start: at(start),
            end: at(end),
        }
    }
}

/// One window of a period: `[start, end)`, named by `tag` (`20261207`, `202612`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub tag: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// Whole seconds from `now` to the window's end (at least 1).
    pub fn remaining(&self, now: DateTime<Utc>) -> u64 {
        (self.end - now).num_seconds().max(1) as u64
    }

    /// The window's length in seconds.
    pub fn length(&self) -> u64 {
        (self.end - self.start).num_seconds().max(1) as u64
    }
}

/// The most a quota may be: large enough for any partner, small enough
/// that counters never overflow.
pub const MAX_LIMIT: u32 = 1_000_000_000;

/// A document's limits, by period; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub day: Option<u32>,
    #[serde(default)]
    pub month: Option<u32>,
}

impl Limits {
    pub fn get(&self, period: Period) -> Option<u32> {
        match period {
            Period::Day => self.day,
            Period::Month => self.month,
        }
    }
}

/// The `quotas` object of a manifest as written: document names or ids
/// (or `*`) and their limits, in order, a repeated key refused.
#[derive(Debug, Default)]
pub struct ManifestQuotas(Vec<(String, Limits)>);

impl<'de> Deserialize<'de> for ManifestQuotas {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> de::Visitor<'de> for Entries {
            type Value = ManifestQuotas;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of document names to {\"day\": N, \"month\": N}")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, Limits)> = Vec::new();
                while let Some((key, limits)) = map.next_entry::<String, Limits>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("quota {key:?} is given twice")));
                    }
                    entries.push((key, limits));
                }
                Ok(ManifestQuotas(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

impl ManifestQuotas {
    /// The quotas by document name, each key checked against the manifest's
    /// documents (`labels`: names by id and body hash).
    pub fn resolve(self, labels: &HashMap<String, Arc<str>>) -> anyhow::Result<Quotas> {
        let mut quotas = Quotas::default();
        for (key, limits) in self.0 {
            for period in Period::ALL {
                if let Some(limit) = limits.get(period) {
                    anyhow::ensure!(
                        limit <= MAX_LIMIT,
                        "quota {key:?}: {} {limit} is over {MAX_LIMIT}",
                        period.label()
                    );
                }
            }
            anyhow::ensure!(
                limits != Limits::default(),
                "quota {key:?} sets neither \"day\" nor \"month\""
            );
            if key == "*" {
                quotas.default = limits;
                continue;
            }
            let stripped = key.strip_prefix("sha256:").unwrap_or(&key);
            let label = labels
                .get(stripped)
                .or_else(|| labels.values().find(|l| ***l == *key))
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "quota {:?} names no document of this manifest",
                        key.chars().take(80).collect::<String>()
                    )
                })?;
            anyhow::ensure!(
                quotas.by_document.insert(label.clone(), limits).is_none(),
                "document {label:?} has two quotas"
            );
        }
        Ok(quotas)
    }
}

/// A client's quotas from its manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quotas {
    by_document: HashMap<Arc<str>, Limits>,
    default: Limits,
}

impl Quotas {
    /// The manifest's limit on `document` for `period`.
    pub fn limit(&self, document: &str, period: Period) -> Option<u32> {
        self.by_document
            .get(document)
            .and_then(|l| l.get(period))
            .or(self.default.get(period))
    }
}

/// Where one quota stands after a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub period: Period,
    pub limit: u64,
    /// Requests counted in the window, this one included.
    pub used: u64,
    /// Seconds until the window ends.
    pub reset: u64,
    /// The window's length in seconds.
    pub window: u64,
}

/// Where a request stands against every quota on its document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub items: Vec<Item>,
}

static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl Standing {
    /// The first quota this request is over, if any.
    pub fn over(&self) -> Option<&Item> {
        self.items.iter().find(|i| i.used > i.limit)
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
    pub fn write(&self, headers: &mut HeaderMap) {
        if self.items.is_empty() {
            return;
        }
        let join = |each: &dyn Fn(&Item) -> String| {
            self.items.iter().map(each).collect::<Vec<_>>().join(", ")
        };
        let policy = join(&|i| format!("\"{}\";q={};w={}", i.period.label(), i.limit, i.window));
        let remaining = join(&|i| {
            format!(
                "\"{}\";r={};t={}",
                i.period.label(),
                i.limit.saturating_sub(i.used),
                i.reset
            )
        });
        for (name, value) in [(&POLICY, policy), (&RATELIMIT, remaining)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name.clone(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> HashMap<String, Arc<str>> {
        HashMap::from([
            ("abc".to_owned(), Arc::from("Browse")),
            ("def".to_owned(), Arc::from("Order")),
        ])
    }

    fn parse(json: &str) -> anyhow::Result<Quotas> {
        serde_json::from_str::<ManifestQuotas>(json)?.resolve(&labels())
    }

    #[test]
    fn quotas_name_documents_by_name_or_id_and_fall_back_to_the_star() {
        let q =
            parse(r#"{"Browse": {"day": 10}, "def": {"month": 5}, "*": {"day": 2, "month": 100}}"#)
                .unwrap();
        assert_eq!(q.limit("Browse", Period::Day), Some(10));
        assert_eq!(q.limit("Browse", Period::Month), Some(100));
        assert_eq!(q.limit("Order", Period::Month), Some(5));
        assert_eq!(q.limit("Order", Period::Day), Some(2));
        assert_eq!(q.limit("Other", Period::Day), Some(2));
    }

    #[test]
    fn bad_quotas_are_refused_with_what_is_wrong() {
        for (json, wanted) in [
            (r#"{"Nope": {"day": 1}}"#, "names no document"),
            (
                r#"{"Browse": {"day": 1}, "Browse": {"day": 2}}"#,
                "given twice",
            ),
            (r#"{"Browse": {"day": 1}, "abc": {"day": 2}}"#, "two quotas"),
            (r#"{"Browse": {"week": 1}}"#, "unknown field"),
            (r#"{"Browse": {"day": -1}}"#, "invalid value"),
            (r#"{"Browse": {"day": "10"}}"#, "invalid type"),
            (r#"{"Browse": {"day": 1.5}}"#, "invalid type"),
            (r#"{"Browse": {}}"#, "neither"),
            (r#"{"Browse": {"day": 4000000000}}"#, "over"),
            (r#"["Browse"]"#, "invalid type"),
            (r#"{"Browse": {"day": null, "month": null}}"#, "neither"),
            (r#"{"Brow\u0000se": {"day": 1}}"#, "names no document"),
            (
                r#"{"Browse": {"day": {"day": {"day": 1}}}}"#,
                "invalid type",
            ),
            (r#"{"Browse": {"day": 1}"#, "EOF"),
            (r#"{"Browse": {"day": 1, "day": 2}}"#, "duplicate field"),
        ] {
            let err = format!("{:#}", parse(json).unwrap_err());
            assert!(err.contains(wanted), "{json}: {err}");
        }
    }

    #[test]
    fn huge_and_deep_quotas_are_refused_quickly() {
        let huge = format!(r#"{{"{}": {{"day": 1}}}}"#, "x".repeat(1 << 20));
        let err = format!("{:#}", parse(&huge).unwrap_err());
        assert!(
            err.contains("names no document") && err.len() < 300,
            "{}",
            &err[..200]
        );
        let many: Vec<String> = (0..10_000)
            .map(|i| format!(r#""D{i}": {{"day": 1}}"#))
            .collect();
        assert!(parse(&format!("{{{}}}", many.join(","))).is_err());
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&format!(r#"{{"Browse": {deep}}}"#)).is_err());
    }

    #[test]
    fn windows_are_utc_days_and_calendar_months() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap();
        let day = Period::Day.window(now);
        assert_eq!(day.tag, "20261231");
        assert_eq!(day.remaining(now), 3600);
        assert_eq!(day.length(), 86_400);
        let month = Period::Month.window(now);
        assert_eq!(month.tag, "202612");
        assert_eq!(
            month.end,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(month.length(), 31 * 86_400);
    }

    #[test]
    fn the_headers_follow_the_draft() {
        let standing = Standing {
            items: vec![
                Item {
                    period: Period::Day,
                    limit: 10,
                    used: 4,
                    reset: 60,
                    window: 86_400,
                },
                Item {
                    period: Period::Month,
                    limit: 100,
                    used: 101,
                    reset: 600,
                    window: 2_592_000,
                },
            ],
        };
        let mut headers = HeaderMap::new();
        standing.write(&mut headers);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"day\";q=10;w=86400, \"month\";q=100;w=2592000"
        );
        assert_eq!(
            headers["ratelimit"],
            "\"day\";r=6;t=60, \"month\";r=0;t=600"
        );
        assert_eq!(standing.over().map(|i| i.period), Some(Period::Month));
    }
}
