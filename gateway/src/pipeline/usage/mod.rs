//! Partner usage and quotas: what each client (the `graphql-client-name`
//! header) does with each of its trusted documents.
//!
//! - [`Usage::observe`]: `/metrics` series per client and document
//!   (`grocery_gateway_client_requests_total{client,document,outcome}` and
//!   `grocery_gateway_client_request_duration_seconds{client,document}`).
//!   Label values come only from manifests: a client without a manifest is
//!   `other`, a document outside its client's manifest is `other`, so no
//!   caller can add series by sending new names.
//! - [`Usage::admit`]: a request of a client's trusted document is counted
//!   in its UTC hour ([`store`]: Redis, shared by replicas, or memory) and
//!   checked against its [`quota`]s; [`Usage::finish`] counts it as an
//!   error unless it ended well.
//! - [`Usage::hours`] and [`Usage::set_quota`]: what ADMIN reads and sets,
//!   as `partnerUsage` and `setPartnerQuota` of the gateway's own subgraph
//!   ([`admin`]).
//!
//! Used by [`super::prepare()`] and the request routes; uses only
//! [`super::persisted`]'s manifests and the metrics' [`Outcome`].

pub mod admin;
pub mod quota;
pub mod store;

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};

use crate::metrics::{Histogram, Outcome};
pub use quota::{Period, Standing};
pub use store::{HourUsage, RETENTION};

/// The label of clients without a manifest and of documents outside one.
pub const OTHER: &str = "other";

/// Series kept before new (client, document) pairs count as `other`: a
/// guard should manifests themselves grow without bound.
pub const MAX_SERIES: usize = 2_000;

/// What usage learns of one request.
#[derive(Clone, Debug)]
pub struct Tally {
    /// The client's name when it has a manifest, else [`OTHER`].
    pub client: Arc<str>,
    /// The trusted document's name, else [`OTHER`].
    pub document: Arc<str>,
    /// The hour the request was counted in, once it was.
    pub hour: Option<i64>,
}

impl Tally {
    /// A request that named `client`, whose manifests are `manifests`.
    pub fn of(client: &str, manifests: &crate::pipeline::persisted::Manifests) -> Self {
        Self {
            client: manifests
                .client(client)
                .map_or_else(|| Arc::from(OTHER), |(name, _)| Arc::from(name)),
            document: Arc::from(OTHER),
            hour: None,
        }
    }
}

/// Why ADMIN's question or change was refused: a code and a message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    fn input(message: String) -> Self {
        Self {
            code: "BAD_USER_INPUT",
            message,
        }
    }

    fn unavailable() -> Self {
        Self {
            code: "SERVICE_UNAVAILABLE",
            message: "usage storage is unavailable; nothing changed, retry".into(),
        }
    }
}

/// Requests by outcome and their latency.
#[derive(Default)]
struct Series {
    outcomes: [u64; Outcome::ALL.len()],
    latency: Histogram,
}

/// A client's name and a document's, as labelled.
type Labels = (Arc<str>, Arc<str>);

/// Usage counters, quotas and their metrics; shared by every request.
pub struct Usage {
    store: store::Store,
    series: Mutex<HashMap<Labels, Series>>,
}

impl Usage {
    /// Counters in the Redis of `redis` (shared with replicas) or in memory.
    pub fn new(redis: Option<redis::aio::ConnectionManager>) -> Self {
        Self {
            store: store::Store::new(redis),
            series: Mutex::default(),
        }
    }

    /// Counts one request of `tally.document` (a trusted document of the
    /// client `tally.client`, whose manifest's quotas are `quotas`) and
    /// checks it against its quotas: `Err` when over one.
    pub async fn admit(
        &self,
        tally: &mut Tally,
        quotas: &quota::Quotas,
    ) -> Result<Standing, Standing> {
        let now = Utc::now();
        let hour = store::hour_of(now);
        let standing = self
            .store
            .count(&tally.client, &tally.document, quotas, now, hour)
            .await;
        tally.hour = Some(hour);
        match standing.over() {
            Some(_) => Err(standing),
            None => Ok(standing),
        }
    }

    /// A request that ended with `outcome` after `took`: its series, and an
    /// error in its hour unless it went well.
    pub async fn finish(&self, tally: &Tally, outcome: Outcome, took: Duration) {
        self.observe(tally, outcome, took);
        if let Some(hour) = tally.hour
            && outcome != Outcome::Ok
        {
            self.store.error(&tally.client, &tally.document, hour).await;
        }
    }

    fn observe(&self, tally: &Tally, outcome: Outcome, took: Duration) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        let mut key = (tally.client.clone(), tally.document.clone());
        if !series.contains_key(&key) && series.len() >= MAX_SERIES {
            key = (Arc::from(OTHER), Arc::from(OTHER));
        }
        let each = series.entry(key).or_default();
        each.outcomes[outcome as usize] += 1;
        each.latency.observe(took.as_secs_f64());
    }

    /// `client`'s usage per document per hour, from the hour holding `from`
    /// to the one holding `to` (at most [`RETENTION`] apart).
    pub async fn hours(
        &self,
        client: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourUsage>, Refused> {
        if from > to {
            return Err(Refused::input("`from` is after `to`".into()));
        }
        if (to - from).to_std().unwrap_or(Duration::MAX) > RETENTION {
            return Err(Refused::input(format!(
                "at most {} days at once: usage is kept that long",
                RETENTION.as_secs() / 86_400
            )));
        }
        self.store
            .hours(client, from, to)
            .await
            .map_err(|_| Refused::unavailable())
    }

    /// Sets ADMIN's `limit` on `document` (a name or id in `client`'s
    /// manifest) per `period`, over the manifest's; `None` removes it.
    pub async fn set_quota(
        &self,
        manifests: &crate::pipeline::persisted::Manifests,
        client: &str,
        document: &str,
        period: Period,
        limit: Option<u32>,
    ) -> Result<(), Refused> {
        let short = |s: &str| s.chars().take(80).collect::<String>();
        let Some((client, manifest)) = manifests.client(client) else {
            return Err(Refused::input(format!(
                "client {:?} has no manifest",
                short(client)
            )));
        };
        let key = document.strip_prefix("sha256:").unwrap_or(document);
        let Some(label) = manifest
            .labels
            .get(key)
            .or_else(|| manifest.labels.values().find(|l| ***l == *document))
        else {
            return Err(Refused::input(format!(
                "{:?} is no document of the {client:?} manifest",
                short(document)
            )));
        };
        if limit.is_some_and(|l| l > quota::MAX_LIMIT) {
            return Err(Refused::input(format!(
                "a quota is at most {}",
                quota::MAX_LIMIT
            )));
        }
        self.store
            .set_override(client, label, period, limit)
            .await
            .map_err(|_| Refused::unavailable())
    }

    /// Prometheus lines: requests and latency per client and document.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP grocery_gateway_client_requests_total Requests by client (graphql-client-name with a manifest, else other), trusted document and outcome.\n\
             # TYPE grocery_gateway_client_requests_total counter\n",
        );
        let Ok(series) = self.series.lock() else {
            return out;
        };
        let mut sorted: Vec<_> = series.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for ((client, document), each) in &sorted {
            for outcome in Outcome::ALL {
                let n = each.outcomes[outcome as usize];
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "grocery_gateway_client_requests_total{{client=\"{}\",document=\"{}\",outcome=\"{}\"}} {n}",
                        crate::metrics::escape(client),
                        crate::metrics::escape(document),
                        outcome.label()
                    );
                }
            }
        }
        out.push_str(
            "# HELP grocery_gateway_client_request_duration_seconds Time from request to response, by client and trusted document.\n\
             # TYPE grocery_gateway_client_request_duration_seconds histogram\n",
        );
        for ((client, document), each) in &sorted {
            let labels = format!(
                "client=\"{}\",document=\"{}\"",
                crate::metrics::escape(client),
                crate::metrics::escape(document)
            );
            each.latency.write(
                &mut out,
                "grocery_gateway_client_request_duration_seconds",
                &labels,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::persisted::{Manifests, parse_client};

    #[test]
    fn a_million_client_names_add_no_series() {
        let usage = Usage::new(None);
        let manifests = Manifests::default();
        for i in 0..1_000_000 {
            let tally = Tally::of(&format!("client-{i}"), &manifests);
            usage.observe(&tally, Outcome::Ok, Duration::ZERO);
        }
        assert_eq!(usage.series.lock().unwrap().len(), 1);
        assert!(usage.render().contains(
            "grocery_gateway_client_requests_total{client=\"other\",document=\"other\",outcome=\"ok\"} 1000000"
        ));
    }

    #[test]
    fn series_past_the_cap_fold_into_other() {
        let usage = Usage::new(None);
        for i in 0..MAX_SERIES + 100 {
            let tally = Tally {
                client: "acme".into(),
                document: format!("Doc{i}").into(),
                hour: None,
            };
            usage.observe(&tally, Outcome::Ok, Duration::ZERO);
        }
        assert_eq!(usage.series.lock().unwrap().len(), MAX_SERIES + 1);
    }

    #[test]
    fn manifest_documents_are_labelled_by_name_or_id() {
        let text = serde_json::json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                { "id": "a1", "name": "Browse", "type": "query", "body": "{ a }" },
                { "id": "b2", "type": "query", "body": "{ b }" },
            ],
            "quotas": { "Browse": { "day": 5 }, "b2": { "month": 7 } },
        });
        let client = parse_client(&text.to_string()).unwrap();
        assert_eq!(client.labels["a1"].as_ref(), "Browse");
        assert_eq!(client.labels["b2"].as_ref(), "b2");
        assert_eq!(client.quotas.limit("Browse", Period::Day), Some(5));
        assert_eq!(client.quotas.limit("b2", Period::Month), Some(7));
    }
}
