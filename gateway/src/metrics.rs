//! Prometheus metrics, written in the text exposition format by hand: a few
//! counters and histograms do not need a metrics framework.
//!
//! - `graphql_requests_total` and `graphql_request_duration_seconds`, by
//!   operation name and outcome (`ok`, `errors`: data with errors,
//!   `persisted_query_not_found`: an APQ hash the gateway does not know yet,
//!   which the client answers by sending the document, `refused`: nothing
//!   executed for any other reason);
//! - `subgraph_fetch_duration_seconds` and `subgraph_fetch_errors_total`, by subgraph;
//! - `grocery_gateway_subgraph_fetches_deduplicated_total` by subgraph: the
//!   fetches among those that sent nothing, answered by an identical one in
//!   flight (so requests sent = fetches − deduplicated);
//! - `plan_cache_hits_total` / `plan_cache_misses_total`;
//! - `supergraph_reloads_total` by result.
//!
//! Operation names come from clients, so at most [`MAX_OPERATIONS`] distinct
//! ones are kept as labels; the rest are counted as `other`.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Distinct operation-name labels kept before new names count as `other`.
pub const MAX_OPERATIONS: usize = 500;

pub use telemetry::histogram::Histogram;

/// How a request ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Executed without errors.
    Ok,
    /// Executed, with errors in the response.
    Errors,
    /// Refused before execution (auth, validation, limits, malformed).
    #[default]
    Refused,
    /// An APQ hash not stored yet (`PERSISTED_QUERY_NOT_FOUND`): the
    /// protocol's first step for every new document, not a refusal, so it
    /// is counted apart.
    PersistedQueryNotFound,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Errors,
        Outcome::Refused,
        Outcome::PersistedQueryNotFound,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Errors => "errors",
            Self::Refused => "refused",
            Self::PersistedQueryNotFound => "persisted_query_not_found",
        }
    }
}

/// The gateway's counters; shared by every request and kept across reloads.
#[derive(Default)]
pub struct Metrics {
    /// By operation name, then outcome: a lookup borrows the name.
    requests: Mutex<HashMap<String, [Histogram; Outcome::ALL.len()]>>,
    fetches: Mutex<HashMap<String, (Histogram, u64)>>,
    /// Fetches answered by an identical one in flight, by subgraph.
    deduplicated: Mutex<HashMap<String, u64>>,
    /// Client queries answered by an identical one in flight.
    requests_deduplicated: AtomicU64,
    plan_hits: AtomicU64,
    plan_misses: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    lane: AtomicU64,
}

impl Metrics {
    /// A request named `operation` (None: anonymous) ended with `outcome` after `took`.
    pub fn request(&self, operation: Option<&str>, outcome: Outcome, took: Duration) {
        let Ok(mut requests) = self.requests.lock() else {
            return;
        };
        let name = operation.unwrap_or("");
        let label = if requests.contains_key(name) || requests.len() < MAX_OPERATIONS {
            name
        } else {
            "other"
        };
        let by_outcome = match requests.get_mut(label) {
            Some(h) => h,
            None => requests.entry(label.to_owned()).or_default(),
        };
        by_outcome[outcome as usize].observe(took.as_secs_f64());
    }

    /// A fetch from `subgraph` took `took`; `failed` when it gave no GraphQL response.
    pub fn fetch(&self, subgraph: &str, took: Duration, failed: bool) {
        let Ok(mut fetches) = self.fetches.lock() else {
            return;
        };
        let entry = match fetches.get_mut(subgraph) {
            Some(entry) => entry,
            None => fetches.entry(subgraph.to_owned()).or_default(),
        };
        entry.0.observe(took.as_secs_f64());
        if failed {
            entry.1 += 1;
        }
    }

    /// A client query was not run: an identical one in flight answered it.
    pub fn request_deduplicated(&self) {
        self.requests_deduplicated.fetch_add(1, Ordering::Relaxed);
    }

    /// A fetch from `subgraph` sent nothing: an identical one in flight answered it.
    pub fn fetch_deduplicated(&self, subgraph: &str) {
        let Ok(mut deduplicated) = self.deduplicated.lock() else {
            return;
        };
        match deduplicated.get_mut(subgraph) {
            Some(count) => *count += 1,
            None => {
                deduplicated.insert(subgraph.to_owned(), 1);
            }
        }
    }

    /// A plan was found in the cache (`true`) or had to be made.
    pub fn plan_cache(&self, hit: bool) {
        let counter = if hit {
            &self.plan_hits
        } else {
            &self.plan_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A supergraph reload succeeded or failed.
    pub fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A `POST /graphql` was served by [`crate::server::http1`], not hyper.
    pub fn lane_request(&self) {
        self.lane.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = self
            .requests
            .lock()
            .map(|r| {
                let mut v: Vec<_> = r
                    .iter()
                    .flat_map(|(name, by_outcome)| {
                        Outcome::ALL
                            .into_iter()
                            .filter(|o| by_outcome[*o as usize].count > 0)
                            .map(|o| ((name.clone(), o), by_outcome[o as usize].clone()))
                    })
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            })
            .unwrap_or_default();
        out.push_str("# HELP graphql_requests_total GraphQL requests by operation name and outcome.\n# TYPE graphql_requests_total counter\n");
        for ((operation, outcome), h) in &requests {
            let _ = writeln!(
                out,
                "graphql_requests_total{{operation=\"{}\",outcome=\"{}\"}} {}",
                escape(operation),
                outcome.label(),
                h.count
            );
        }
        out.push_str("# HELP graphql_request_duration_seconds Time from request to response.\n# TYPE graphql_request_duration_seconds histogram\n");
        for ((operation, outcome), h) in &requests {
            let labels = format!(
                "operation=\"{}\",outcome=\"{}\"",
                escape(operation),
                outcome.label()
            );
            h.write(&mut out, "graphql_request_duration_seconds", &labels);
        }
        let fetches = self
            .fetches
            .lock()
            .map(|f| {
                let mut v: Vec<_> = f.iter().map(|(k, e)| (k.clone(), e.clone())).collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            })
            .unwrap_or_default();
        out.push_str("# HELP subgraph_fetch_duration_seconds Time of each subgraph fetch.\n# TYPE subgraph_fetch_duration_seconds histogram\n");
        for (subgraph, (h, _)) in &fetches {
            let labels = format!("subgraph=\"{}\"", escape(subgraph));
            h.write(&mut out, "subgraph_fetch_duration_seconds", &labels);
        }
        out.push_str("# HELP subgraph_fetch_errors_total Subgraph fetches that gave no GraphQL response.\n# TYPE subgraph_fetch_errors_total counter\n");
        for (subgraph, (_, errors)) in &fetches {
            let _ = writeln!(
                out,
                "subgraph_fetch_errors_total{{subgraph=\"{}\"}} {errors}",
                escape(subgraph)
            );
        }
        let deduplicated = self
            .deduplicated
            .lock()
            .map(|d| {
                let mut v: Vec<_> = d.iter().map(|(k, n)| (k.clone(), *n)).collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        out.push_str("# HELP grocery_gateway_subgraph_fetches_deduplicated_total Subgraph fetches answered by an identical one in flight, not sent.\n# TYPE grocery_gateway_subgraph_fetches_deduplicated_total counter\n");
        for (subgraph, n) in &deduplicated {
            let _ = writeln!(
                out,
                "grocery_gateway_subgraph_fetches_deduplicated_total{{subgraph=\"{}\"}} {n}",
                escape(subgraph)
            );
        }
        let _ = writeln!(
            out,
            "# HELP grocery_gateway_requests_deduplicated_total Client queries answered by an identical one in flight, not run.\n# TYPE grocery_gateway_requests_deduplicated_total counter\ngrocery_gateway_requests_deduplicated_total {}",
            self.requests_deduplicated.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP plan_cache_hits_total Operations whose plan was cached.\n# TYPE plan_cache_hits_total counter\nplan_cache_hits_total {}\n\
             # HELP plan_cache_misses_total Operations that had to be planned.\n# TYPE plan_cache_misses_total counter\nplan_cache_misses_total {}\n\
             # HELP supergraph_reloads_total Supergraph reloads by result.\n# TYPE supergraph_reloads_total counter\n\
             supergraph_reloads_total{{result=\"ok\"}} {}\nsupergraph_reloads_total{{result=\"failed\"}} {}\n\
             # HELP grocery_gateway_lane_requests_total POST /graphql requests served by the gateway's own HTTP/1.1 lane (the rest by hyper).\n\
             # TYPE grocery_gateway_lane_requests_total counter\ngrocery_gateway_lane_requests_total {}\n",
            self.plan_hits.load(Ordering::Relaxed),
            self.plan_misses.load(Ordering::Relaxed),
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
            self.lane.load(Ordering::Relaxed),
        );
        out
    }
}

/// A label value escaped as the exposition format requires.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.request(Some("Get\"Me"), Outcome::Ok, Duration::from_millis(2));
        m.request(Some("Get\"Me"), Outcome::Ok, Duration::from_millis(40));
        m.request(None, Outcome::Refused, Duration::from_micros(100));
        m.request(
            None,
            Outcome::PersistedQueryNotFound,
            Duration::from_micros(50),
        );
        m.fetch("users", Duration::from_millis(3), true);
        m.fetch_deduplicated("users");
        m.fetch_deduplicated("users");
        m.plan_cache(true);
        let text = m.render();
        assert!(text.contains(r#"graphql_requests_total{operation="Get\"Me",outcome="ok"} 2"#));
        assert!(text.contains(r#"graphql_requests_total{operation="",outcome="refused"} 1"#));
        assert!(text.contains(
            r#"graphql_requests_total{operation="",outcome="persisted_query_not_found"} 1"#
        ));
        assert!(text.contains(
            r#"graphql_request_duration_seconds_bucket{operation="Get\"Me",outcome="ok",le="0.0025"} 1"#
        ));
        assert!(text.contains(
            r#"graphql_request_duration_seconds_bucket{operation="Get\"Me",outcome="ok",le="0.05"} 2"#
        ));
        assert!(text.contains(r#"subgraph_fetch_errors_total{subgraph="users"} 1"#));
        assert!(text.contains(
            "grocery_gateway_subgraph_fetches_deduplicated_total{subgraph=\"users\"} 2\n"
        ));
        assert!(text.contains("plan_cache_hits_total 1\n"));
    }

    #[test]
    fn operation_names_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_OPERATIONS * 4 {
            m.request(Some(&format!("op{i}")), Outcome::Ok, Duration::ZERO);
        }
        let kept = m.requests.lock().unwrap().len();
        assert!(kept <= MAX_OPERATIONS + 1, "{kept}");
        assert!(m.render().contains(r#"operation="other""#));
    }
}
