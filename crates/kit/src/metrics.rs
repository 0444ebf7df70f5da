//! What a subgraph's `/metrics` shows, in the Prometheus text format:
//! `graphql_requests_total` and `graphql_request_duration_seconds` by
//! operation name and outcome (`ok`, `errors`: data with errors, `refused`:
//! nothing executed), then the event counters of the component's own
//! consumers ([`crate::events::metrics_text`]).
//!
//! One [`RequestMetrics`] per [`crate::server::router`], so subgraphs sharing a
//! process (`grocery dev`) count apart. Labels and buckets are the gateway's
//! (its `metrics` module), so one dashboard reads both; operation names come
//! from clients, so at most [`MAX_OPERATIONS`] distinct ones are kept and the
//! rest are counted as `other`.

use std::{collections::HashMap, fmt::Write, sync::Mutex, time::Duration};

/// Distinct operation-name labels kept before new names count as `other`.
pub const MAX_OPERATIONS: usize = 500;

pub use telemetry::histogram::Histogram;

/// How a GraphQL request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Executed without errors.
    Ok,
    /// Executed, with errors in the response.
    Errors,
    /// Refused before execution (media type, parsing, validation, input rule).
    Refused,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Errors, Outcome::Refused];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Errors => "errors",
            Self::Refused => "refused",
        }
    }

    /// How `response` ended: errors none of which has a path, and no data,
    /// mean nothing executed.
    pub fn of(response: &async_graphql::Response) -> Self {
        if response.errors.is_empty() {
            Self::Ok
        } else if response.data == async_graphql::Value::Null
            && response.errors.iter().all(|e| e.path.is_empty())
        {
            Self::Refused
        } else {
            Self::Errors
        }
    }
}

/// The GraphQL requests one router served, by operation name and outcome.
#[derive(Default)]
pub struct RequestMetrics {
    /// By operation name, then outcome: a lookup borrows the name.
    requests: Mutex<HashMap<String, [Histogram; Outcome::ALL.len()]>>,
}

impl RequestMetrics {
    /// A request named `operation` (None: anonymous) ended with `outcome` after `took`.
    pub fn request(&self, operation: Option<&str>, outcome: Outcome, took: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Its series, in the Prometheus text format (version 0.0.4).
    pub fn render(&self, out: &mut String) {
        let mut series: Vec<((String, Outcome), Histogram)> = {
            let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            requests
                .iter()
                .flat_map(|(name, by_outcome)| {
                    Outcome::ALL
                        .into_iter()
                        .filter(|o| by_outcome[*o as usize].count > 0)
                        .map(|o| ((name.clone(), o), by_outcome[o as usize].clone()))
                })
                .collect()
        };
        series.sort_by(|a, b| (&a.0.0, a.0.1 as usize).cmp(&(&b.0.0, b.0.1 as usize)));
        out.push_str("# HELP graphql_requests_total GraphQL requests by operation name and outcome.\n# TYPE graphql_requests_total counter\n");
        for ((operation, outcome), h) in &series {
            let _ = writeln!(
                out,
                "graphql_requests_total{{operation=\"{}\",outcome=\"{}\"}} {}",
                escape(operation),
                outcome.label(),
                h.count
            );
        }
        out.push_str("# HELP graphql_request_duration_seconds Time from request to response.\n# TYPE graphql_request_duration_seconds histogram\n");
        for ((operation, outcome), h) in &series {
            let labels = format!(
                "operation=\"{}\",outcome=\"{}\"",
                escape(operation),
                outcome.label()
            );
            h.write(out, "graphql_request_duration_seconds", &labels);
        }
    }
}

/// A label value escaped as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_past_the_bound_count_as_other() {
        let m = RequestMetrics::default();
        for i in 0..MAX_OPERATIONS + 10 {
            m.request(Some(&format!("op{i}")), Outcome::Ok, Duration::ZERO);
        }
        // A name kept before the bound is still counted under its own label.
        m.request(Some("op0"), Outcome::Errors, Duration::from_millis(2));
        assert_eq!(m.requests.lock().unwrap().len(), MAX_OPERATIONS + 1);
        let mut text = String::new();
        m.render(&mut text);
        assert!(text.contains("graphql_requests_total{operation=\"other\",outcome=\"ok\"} 10\n"));
        assert!(text.contains("graphql_requests_total{operation=\"op0\",outcome=\"errors\"} 1\n"));
        assert!(text.contains(
            "graphql_request_duration_seconds_bucket{operation=\"op0\",outcome=\"errors\",le=\"0.0025\"} 1\n"
        ));
        assert!(!text.contains(&format!("operation=\"op{}\"", MAX_OPERATIONS)));
    }

    #[test]
    fn an_error_without_a_path_and_no_data_is_a_refusal() {
        let refused = async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
            "unknown field",
            None,
        )]);
        assert_eq!(Outcome::of(&refused), Outcome::Refused);
        let mut partial = async_graphql::Response::new(async_graphql::Value::Null);
        let mut error = async_graphql::ServerError::new("not found", None);
        error.path = vec![async_graphql::PathSegment::Field("order".into())];
        partial.errors.push(error);
        assert_eq!(Outcome::of(&partial), Outcome::Errors);
        assert_eq!(
            Outcome::of(&async_graphql::Response::new(async_graphql::Value::Null)),
            Outcome::Ok
        );
    }
}
