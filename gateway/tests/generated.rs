//! Generated operations against the gateway (issue 23, point 4).
//!
//! A seeded generator writes documents from an API schema: valid ones, and
//! invalid ones made by damaging valid ones. Valid documents run through the
//! gateway over four stub subgraphs and through a monolithic reference
//! schema serving the same dataset; both must give the same `data` and
//! errors at the same paths. Invalid ones must be refused with a code, a
//! 4xx and no subgraph called. Every case is time-boxed and the slowest is
//! printed. The same generator runs over grocery's own supergraph through
//! parse → validate → plan (no execution).
//!
//! `GENERATED_CASES` (default 300 of each kind) and `GENERATED_SEED` (a
//! number, or `random`) set a campaign; case `i` uses seed `SEED + i`, so a
//! failure prints the one-case command that replays it.

mod support;

#[path = "generated/api.rs"]
mod api;
#[path = "generated/completion.rs"]
mod completion;
#[path = "generated/dataset.rs"]
mod dataset;
#[path = "generated/document.rs"]
mod document;
#[path = "generated/generator.rs"]
mod generator;
#[path = "generated/known.rs"]
mod known;
#[path = "generated/mutation.rs"]
mod mutation;
#[path = "generated/reference.rs"]
mod reference;
#[path = "generated/regressions.rs"]
mod regressions;
#[path = "generated/stubs.rs"]
mod stubs;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Map, Value, json};

use api::Api;
use mutation::Expect;

/// Longest one case may take in the gateway before the run fails.
const CASE_LIMIT: Duration = Duration::from_secs(5);
/// Longest one plan of grocery's supergraph may take.
const PLAN_LIMIT: Duration = Duration::from_secs(2);
/// Failures shown in full before the count.
const SHOWN: usize = 5;

/// The campaign: first seed and number of cases of each kind.
fn campaign() -> (u64, u64) {
    let seed = match std::env::var("GENERATED_SEED").as_deref() {
        Ok("random") => rand::random(),
        Ok(text) => text
            .parse()
            .expect("GENERATED_SEED is a number or `random`"),
        Err(_) => 23,
    };
    let cases = std::env::var("GENERATED_CASES")
        .map(|n| n.parse().expect("GENERATED_CASES is a number"))
        .unwrap_or(300);
    (seed, cases)
}

fn replay(test: &str, seed: u64) -> String {
    format!(
        "GENERATED_SEED={seed} GENERATED_CASES=1 cargo test -p grocery-gateway --test generated {test}"
    )
}

/// The slowest case so far.
#[derive(Default)]
struct Slowest {
    time: Duration,
    seed: u64,
    total: Duration,
}

impl Slowest {
    fn record(&mut self, time: Duration, seed: u64) {
        self.total += time;
        if time > self.time {
            self.time = time;
            self.seed = seed;
        }
    }
}

/// Failures, kept to show a few and count the rest.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(self, what: &str) {
        if self.0.is_empty() {
            return;
        }
        let shown: Vec<&str> = self.0.iter().take(SHOWN).map(String::as_str).collect();
        panic!(
            "{} {what} failed; the first ones:\n\n{}",
            self.0.len(),
            shown.join("\n\n")
        );
    }
}

/// The four stubs and a gateway over them.
struct Stage {
    federation: stubs::Federation,
    gateway: Arc<gateway::Gateway>,
    reference: reference::Reference,
    api: Api,
}

impl Stage {
    async fn new() -> Self {
        let federation = stubs::Federation::serve().await;
        let gateway = support::gateway(&federation.supergraph());
        let api = Api::new(gateway.current().supergraph.api_schema());
        Self {
            federation,
            gateway,
            reference: reference::schema(),
            api,
        }
    }

    /// The gateway's answer: status, body, and how long it took.
    async fn gateway(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Map<String, Value>,
    ) -> (u16, Value, Duration) {
        use tower::ServiceExt;
        let body =
            json!({ "query": query, "operationName": operation_name, "variables": variables });
        let request = axum::http::Request::post("/graphql")
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let started = Instant::now();
        let answer = tokio::time::timeout(CASE_LIMIT, async {
            let response = gateway::router(self.gateway.clone())
                .oneshot(request)
                .await
                .unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, bytes)
        })
        .await;
        let took = started.elapsed();
        let (status, bytes) =
            answer.unwrap_or_else(|_| panic!("the gateway took over {CASE_LIMIT:?} on {query}"));
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("the gateway answered no JSON ({e}) to {query}"));
        (status, body, took)
    }

    /// The reference's answer.
    async fn reference(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Map<String, Value>,
    ) -> Value {
        let mut request = async_graphql::Request::new(query).variables(
            async_graphql::Variables::from_json(Value::Object(variables.clone())),
        );
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        serde_json::to_value(self.reference.execute(request).await).unwrap()
    }
}

/// Whether a GraphQL response is a refusal of the whole request (no error has a path).
fn refused(response: &Value) -> bool {
    response["errors"]
        .as_array()
        .is_some_and(|errors| !errors.is_empty() && errors.iter().all(|e| e.get("path").is_none()))
}

/// The paths of a response's errors, sorted: what must match, not the messages.
fn error_paths(response: &Value) -> Vec<String> {
    let mut paths: Vec<String> = response["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            e.get("path")
                .map_or_else(|| "-".to_owned(), Value::to_string)
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// How the gateway's answer differs from the reference's, if it does: why,
/// and the known issue that explains it, if one does.
fn differs(
    status: u16,
    answer: &Value,
    expected: &Value,
) -> Option<(String, Option<&'static str>)> {
    if status != 200 {
        return Some((format!("status {status}"), known::planner_failure(answer)));
    }
    let data = answer.get("data").unwrap_or(&Value::Null);
    if let Some((at, got, want)) = first_difference(data, &expected["data"], Vec::new()) {
        let why = format!(
            "data differs at {}: {got} instead of {want}",
            Value::Array(at.clone())
        );
        let known = known::data_difference(&at, &got, &want, expected)
            .or_else(|| known::planner_failure(answer));
        return Some((why, known));
    }
    let (got, want) = (error_paths(answer), error_paths(expected));
    (got != want).then(|| {
        let known = known::error_paths(&got, &want);
        (
            format!("error paths differ: {got:?}, expected {want:?}"),
            known,
        )
    })
}

/// Where `got` first differs from `want`: the path and both values there.
fn first_difference(
    got: &Value,
    want: &Value,
    at: Vec<Value>,
) -> Option<(Vec<Value>, Value, Value)> {
    let deeper = |key: Value| {
        let mut path = at.clone();
        path.push(key);
        path
    };
    match (got, want) {
        (Value::Object(g), Value::Object(w))
            if g.len() == w.len() && w.keys().all(|k| g.contains_key(k)) =>
        {
            w.iter()
                .find_map(|(k, wv)| first_difference(&g[k], wv, deeper(json!(k))))
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (gv, wv))| first_difference(gv, wv, deeper(json!(i)))),
        _ if got == want => None,
        _ => Some((at, got.clone(), want.clone())),
    }
}

/// Why the gateway's refusal is not the one expected, if it is not.
fn bad_refusal(status: u16, answer: &Value, expect: Expect) -> Option<String> {
    let errors = answer["errors"].as_array().filter(|e| !e.is_empty());
    let Some(errors) = errors else {
        return Some("no errors".into());
    };
    let codes: Vec<&str> = errors
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap_or(""))
        .collect();
    if codes
        .iter()
        .any(|c| c.is_empty() || *c == "INTERNAL_SERVER_ERROR")
    {
        return Some(format!("codes {codes:?}"));
    }
    if !(400..500).contains(&status) {
        return Some(format!("status {status}"));
    }
    if answer.get("data").is_some_and(|d| !d.is_null()) {
        return Some("data with a refusal".into());
    }
    match expect {
        Expect::Code(code) if codes.iter().any(|c| *c != code) => {
            Some(format!("codes {codes:?}, expected {code}"))
        }
        _ => None,
    }
}

/// What was sent: the document, the operation name and the variables.
type Sent<'a> = (&'a str, Option<&'a str>, &'a Map<String, Value>);

/// A failure as printed: why, how to replay it, what was sent and answered.
fn report(
    seed: u64,
    test: &str,
    why: &str,
    sent: Sent<'_>,
    got: &Value,
    want: Option<&Value>,
) -> String {
    let (query, name, variables) = sent;
    let want = want
        .map(|w| format!("\nreference: {w}"))
        .unwrap_or_default();
    format!(
        "seed {seed}: {why}\nreplay: {}\noperation: {name:?}\nvariables: {}\n{query}\ngateway: {got}{want}",
        replay(test, seed),
        Value::Object(variables.clone()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_valid_operations_get_the_references_answer() {
    let stage = Stage::new().await;
    let (first, cases) = campaign();
    let (mut slowest, mut failures) = (Slowest::default(), Failures::default());
    let mut known = known::Seen::default();
    for seed in first..first + cases {
        let case = generator::valid(
            &stage.api,
            dataset::VOCABULARY,
            &mut StdRng::seed_from_u64(seed),
            false,
        );
        let query = case.query();
        let name = case.operation_name.as_deref();
        let (padded, filled) = completion::request(&case);
        let raw = stage.reference(&padded, name, &filled).await;
        if refused(&raw) {
            failures.0.push(report(
                seed,
                "valid",
                "the generator wrote a document the reference refuses",
                (&query, name, &case.variables),
                &raw,
                None,
            ));
            continue;
        }
        let expected = completion::complete(raw, &case, &stage.api);
        let (status, answer, took) = stage.gateway(&query, name, &case.variables).await;
        slowest.record(took, seed);
        match differs(status, &answer, &expected) {
            None => {}
            Some((why, Some(issue))) => known.record(
                issue,
                report(
                    seed,
                    "valid",
                    &why,
                    (&query, name, &case.variables),
                    &answer,
                    Some(&expected),
                ),
            ),
            Some((why, None)) => failures.0.push(report(
                seed,
                "valid",
                &why,
                (&query, name, &case.variables),
                &answer,
                Some(&expected),
            )),
        }
    }
    println!(
        "{cases} valid cases from seed {first}: slowest {:?} (seed {}), total {:?}, {} subgraph requests",
        slowest.time,
        slowest.seed,
        slowest.total,
        stage.federation.requests()
    );
    known.print();
    failures.check("valid cases");
    assert!(
        cases < 20 || stage.federation.requests() > 0,
        "valid cases reach the subgraphs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_invalid_operations_are_refused_before_any_subgraph_is_called() {
    let stage = Stage::new().await;
    let (first, cases) = campaign();
    let (mut slowest, mut failures) = (Slowest::default(), Failures::default());
    let mut refusals = 0;
    let mut known = known::Seen::default();
    for seed in first..first + cases {
        let bad = mutation::invalid(
            &stage.api,
            dataset::VOCABULARY,
            &mut StdRng::seed_from_u64(seed),
        );
        let name = bad.operation_name.as_deref();
        let expected = match bad.expect {
            Expect::Oracle => Some(stage.reference(&bad.query, name, &bad.variables).await),
            _ => None,
        };
        let before = stage.federation.requests();
        let (status, answer, took) = stage.gateway(&bad.query, name, &bad.variables).await;
        slowest.record(took, seed);
        let why = match &expected {
            // Noise that left the document valid: it must run (its data is not compared:
            // the reference's answer can be completed only for generated documents).
            Some(expected) if !refused(expected) => (status != 200 || answer.get("data").is_none())
                .then(|| format!("the reference runs it, the gateway answers {status}")),
            _ => {
                refusals += 1;
                bad_refusal(status, &answer, bad.expect).or_else(|| {
                    (stage.federation.requests() != before)
                        .then(|| "a subgraph was called".to_owned())
                })
            }
        };
        if let Some(why) = why {
            let why = format!("{}: {why}", bad.kind);
            let text = report(
                seed,
                "invalid",
                &why,
                (&bad.query, name, &bad.variables),
                &answer,
                expected.as_ref(),
            );
            match known::planner_failure(&answer) {
                Some(issue) => known.record(issue, text),
                None => failures.0.push(text),
            }
        }
    }
    println!(
        "{cases} invalid cases from seed {first} ({refusals} refused): slowest {:?} (seed {}), total {:?}",
        slowest.time, slowest.seed, slowest.total
    );
    known.print();
    failures.check("invalid cases");
    assert!(refusals > cases / 2, "most damaged documents are refused");
}

#[tokio::test]
async fn the_reference_serves_the_api_the_federation_composes() {
    let stage = Stage::new().await;
    let sdl = stage.reference.sdl();
    let reference = graphql_tools::parser::parse_schema::<String>(&sdl)
        .unwrap()
        .into_static();
    assert_eq!(Api::new(&reference), stage.api);
    for ty in [
        "Product",
        "User",
        "Review",
        "Sellable",
        "Listing",
        "ProductFilter",
        "Category",
    ] {
        assert!(stage.api.types.contains_key(ty), "{ty} in the API");
    }
}

#[test]
fn generated_operations_over_the_grocery_supergraph_plan_in_bounded_time() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql");
    let supergraph = gateway::Supergraph::load(&std::fs::read_to_string(path).unwrap()).unwrap();
    let api = Api::new(supergraph.api_schema());
    let vocabulary = [
        "APPLE",
        "MILK",
        "00000000-0000-0000-0000-000000000001",
        "GR-000001",
        "3.50",
        "2026-02-01",
        "2026-02-01T10:00:00Z",
        "",
        "truck-1",
    ];
    let (first, cases) = campaign();
    let (mut slowest, mut failures) = (Slowest::default(), Failures::default());
    let mut known = known::Seen::default();
    for seed in first..first + cases {
        let case = generator::valid(&api, &vocabulary, &mut StdRng::seed_from_u64(seed), true);
        let query = case.query();
        let name = case.operation_name.as_deref();
        let started = Instant::now();
        let planned = supergraph
            .plan(&query, name)
            .and_then(|prepared| supergraph.coerce_variables(&prepared, &case.variables));
        let took = started.elapsed();
        slowest.record(took, seed);
        let why = match planned {
            Err(e) => Some(format!("refused: {e} ({})", e.code())),
            Ok(_) if took > PLAN_LIMIT => Some(format!("planning took {took:?}")),
            Ok(_) => None,
        };
        if let Some(why) = why {
            let text = report(
                seed,
                "grocery",
                &why,
                (&query, name, &case.variables),
                &Value::Null,
                None,
            );
            match known::planner_failure(&json!({ "errors": [{ "message": why }] })) {
                Some(issue) => known.record(issue, text),
                None => failures.0.push(text),
            }
        }
        let bad = mutation::invalid(&api, &vocabulary, &mut StdRng::seed_from_u64(seed));
        let started = Instant::now();
        let planned = supergraph
            .plan(&bad.query, bad.operation_name.as_deref())
            .and_then(|prepared| supergraph.coerce_variables(&prepared, &bad.variables));
        let took = started.elapsed();
        slowest.record(took, seed);
        let why = match (planned, bad.expect) {
            (Ok(_), Expect::Oracle) => None,
            (Ok(_), _) => Some("planned".to_owned()),
            (Err(e), Expect::Code(code)) if e.code() != code => {
                Some(format!("refused with {} ({e}), expected {code}", e.code()))
            }
            (Err(e), _) if e.code() == "INTERNAL_SERVER_ERROR" => {
                Some(format!("refused with {} ({e})", e.code()))
            }
            _ if took > PLAN_LIMIT => Some(format!("refusing took {took:?}")),
            _ => None,
        };
        if let Some(why) = why {
            let why = format!("{}: {why}", bad.kind);
            let text = report(
                seed,
                "grocery",
                &why,
                (&bad.query, bad.operation_name.as_deref(), &bad.variables),
                &Value::Null,
                None,
            );
            let message = json!({ "errors": [{ "message": why }] });
            match known::planner_failure(&message) {
                Some(issue) => known.record(issue, text),
                None => failures.0.push(text),
            }
        }
    }
    println!(
        "{} documents over grocery's supergraph from seed {first}: slowest plan {:?} (seed {}), total {:?}",
        2 * cases,
        slowest.time,
        slowest.seed,
        slowest.total
    );
    known.print();
    failures.check("documents over grocery's supergraph");
}
