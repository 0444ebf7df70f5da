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
#[path = "generated/mutation.rs"]
mod mutation;
#[path = "generated/reference.rs"]
mod reference;
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
        Ok(text) => text.parse().expect("GENERATED_SEED is a number or `random`"),
        Err(_) => 23,
    };
    let cases = std::env::var("GENERATED_CASES")
        .map(|n| n.parse().expect("GENERATED_CASES is a number"))
        .unwrap_or(300);
    (seed, cases)
}

fn replay(test: &str, seed: u64) -> String {
    format!("GENERATED_SEED={seed} GENERATED_CASES=1 cargo test -p grocery-gateway --test generated {test}")
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
        panic!("{} {what} failed; the first ones:\n\n{}", self.0.len(), shown.join("\n\n"));
    }
}

/// The four stubs and a gateway over them.
struct Stage {
    federation: stubs::Federation,
    gateway: Arc<gateway::http::Gateway>,
    reference: reference::Reference,
    api: Api,
}

impl Stage {
    async fn new() -> Self {
        let federation = stubs::Federation::serve().await;
        let gateway = support::gateway(&federation.supergraph());
        let api = Api::new(gateway.current().supergraph.api_schema());
        Self { federation, gateway, reference: reference::schema(), api }
    }

    /// The gateway's answer: status, body, and how long it took.
    async fn gateway(&self, query: &str, operation_name: Option<&str>, variables: &Map<String, Value>) -> (u16, Value, Duration) {
        use tower::ServiceExt;
        let body = json!({ "query": query, "operationName": operation_name, "variables": variables });
        let request = axum::http::Request::post("/graphql")
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let started = Instant::now();
        let answer = tokio::time::timeout(CASE_LIMIT, async {
            let response = gateway::http::router(self.gateway.clone()).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (status, bytes)
        })
        .await;
        let took = started.elapsed();
        let (status, bytes) = answer.unwrap_or_else(|_| panic!("the gateway took over {CASE_LIMIT:?} on {query}"));
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("the gateway answered no JSON ({e}) to {query}"));
        (status, body, took)
    }

    /// The reference's answer.
    async fn reference(&self, query: &str, operation_name: Option<&str>, variables: &Map<String, Value>) -> Value {
        let mut request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(Value::Object(variables.clone())));
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        serde_json::to_value(self.reference.execute(request).await).unwrap()
    }
}

/// Whether a GraphQL response is a refusal of the whole request (no error has a path).
fn refused(response: &Value) -> bool {
    response["errors"].as_array().is_some_and(|errors| !errors.is_empty() && errors.iter().all(|e| e.get("path").is_none()))
}

/// The paths of a response's errors, sorted: what must match, not the messages.
fn error_paths(response: &Value) -> Vec<String> {
    let mut paths: Vec<String> = response["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.get("path").map_or_else(|| "-".to_owned(), Value::to_string))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Why the gateway's answer differs from the reference's, if it does.
fn differs(status: u16, answer: &Value, expected: &Value) -> Option<String> {
    if status != 200 {
        return Some(format!("status {status}"));
    }
    let data = answer.get("data").unwrap_or(&Value::Null);
    if data != &expected["data"] {
        return Some("data differs".into());
    }
    let (got, want) = (error_paths(answer), error_paths(expected));
    (got != want).then(|| format!("error paths differ: {got:?}, expected {want:?}"))
}

/// Why the gateway's refusal is not the one expected, if it is not.
fn bad_refusal(status: u16, answer: &Value, expect: Expect) -> Option<String> {
    let errors = answer["errors"].as_array().filter(|e| !e.is_empty());
    let Some(errors) = errors else {
        return Some("no errors".into());
    };
    let codes: Vec<&str> = errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("")).collect();
    if codes.iter().any(|c| c.is_empty() || *c == "INTERNAL_SERVER_ERROR") {
        return Some(format!("codes {codes:?}"));
    }
    if !(400..500).contains(&status) {
        return Some(format!("status {status}"));
    }
    if answer.get("data").is_some_and(|d| !d.is_null()) {
        return Some("data with a refusal".into());
    }
    match expect {
        Expect::Code(code) if codes.iter().any(|c| *c != code) => Some(format!("codes {codes:?}, expected {code}")),
        _ => None,
    }
}

fn report(seed: u64, test: &str, why: &str, query: &str, name: Option<&str>, variables: &Map<String, Value>, got: &Value, want: Option<&Value>) -> String {
    let want = want.map(|w| format!("\nreference: {w}")).unwrap_or_default();
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
    for seed in first..first + cases {
        let case = generator::valid(&stage.api, dataset::VOCABULARY, &mut StdRng::seed_from_u64(seed), false);
        let query = case.query();
        let name = case.operation_name.as_deref();
        let (padded, filled) = completion::request(&case);
        let raw = stage.reference(&padded, name, &filled).await;
        if refused(&raw) {
            failures.0.push(report(seed, "valid", "the generator wrote a document the reference refuses", &query, name, &case.variables, &raw, None));
            continue;
        }
        let expected = completion::complete(raw, &case, &stage.api);
        let (status, answer, took) = stage.gateway(&query, name, &case.variables).await;
        slowest.record(took, seed);
        if let Some(why) = differs(status, &answer, &expected) {
            failures.0.push(report(seed, "valid", &why, &query, name, &case.variables, &answer, Some(&expected)));
        }
    }
    println!(
        "{cases} valid cases from seed {first}: slowest {:?} (seed {}), total {:?}, {} subgraph requests",
        slowest.time, slowest.seed, slowest.total, stage.federation.requests()
    );
    failures.check("valid cases");
    assert!(stage.federation.requests() > 0, "valid cases reach the subgraphs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_invalid_operations_are_refused_before_any_subgraph_is_called() {
    let stage = Stage::new().await;
    let (first, cases) = campaign();
    let (mut slowest, mut failures) = (Slowest::default(), Failures::default());
    let mut refusals = 0;
    for seed in first..first + cases {
        let bad = mutation::invalid(&stage.api, dataset::VOCABULARY, &mut StdRng::seed_from_u64(seed));
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
            Some(expected) if !refused(expected) => {
                (status != 200 || answer.get("data").is_none()).then(|| format!("the reference runs it, the gateway answers {status}"))
            }
            _ => {
                refusals += 1;
                bad_refusal(status, &answer, bad.expect).or_else(|| {
                    (stage.federation.requests() != before).then(|| "a subgraph was called".to_owned())
                })
            }
        };
        if let Some(why) = why {
            let why = format!("{}: {why}", bad.kind);
            failures.0.push(report(seed, "invalid", &why, &bad.query, name, &bad.variables, &answer, expected.as_ref()));
        }
    }
    println!(
        "{cases} invalid cases from seed {first} ({refusals} refused): slowest {:?} (seed {}), total {:?}",
        slowest.time, slowest.seed, slowest.total
    );
    failures.check("invalid cases");
    assert!(refusals > cases / 2, "most damaged documents are refused");
}

#[tokio::test]
async fn the_reference_serves_the_api_the_federation_composes() {
    let stage = Stage::new().await;
    let sdl = stage.reference.sdl();
    let reference = graphql_tools::parser::parse_schema::<String>(&sdl).unwrap().into_static();
    assert_eq!(Api::new(&reference), stage.api);
    for ty in ["Product", "User", "Review", "Sellable", "Listing", "ProductFilter", "Category"] {
        assert!(stage.api.types.contains_key(ty), "{ty} in the API");
    }
}

#[test]
fn generated_operations_over_the_grocery_supergraph_plan_in_bounded_time() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql");
    let supergraph = gateway::Supergraph::load(&std::fs::read_to_string(path).unwrap()).unwrap();
    let api = Api::new(supergraph.api_schema());
    let vocabulary = ["APPLE", "MILK", "00000000-0000-0000-0000-000000000001", "GR-000001", "3.50", "2026-02-01", "2026-02-01T10:00:00Z", "", "truck-1"];
    let (first, cases) = campaign();
    let (mut slowest, mut failures) = (Slowest::default(), Failures::default());
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
            failures.0.push(report(seed, "grocery", &why, &query, name, &case.variables, &Value::Null, None));
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
            (Err(e), Expect::Code(code)) if e.code() != code => Some(format!("refused with {} ({e}), expected {code}", e.code())),
            (Err(e), _) if e.code() == "INTERNAL_SERVER_ERROR" => Some(format!("refused with {} ({e})", e.code())),
            _ if took > PLAN_LIMIT => Some(format!("refusing took {took:?}")),
            _ => None,
        };
        if let Some(why) = why {
            let why = format!("{}: {why}", bad.kind);
            failures.0.push(report(seed, "grocery", &why, &bad.query, bad.operation_name.as_deref(), &bad.variables, &Value::Null, None));
        }
    }
    println!(
        "{} documents over grocery's supergraph from seed {first}: slowest plan {:?} (seed {}), total {:?}",
        2 * cases, slowest.time, slowest.seed, slowest.total
    );
    failures.check("documents over grocery's supergraph");
}

#[tokio::test]
async fn scratch() {
    let stage = Stage::new().await;
    for q in [
        r#"{ product(sku:"APPLE") { reviews { id flagged } } }"#,
        r#"{ review(id:"r2") { id flagged } }"#,
        r#"{ topReviews(first: 6) { id flagged } }"#,
        r#"{ sellables { t1: __typename } }"#,
        r#"{ sellables { __typename } }"#,
        r#"{ products(first: 2) { restockDate } }"#,
    ] {
        println!("{q}\nREF {}", stage.reference(q, None, &Map::new()).await);
        println!("GW  {}", stage.gateway(q, None, &Map::new()).await.1);
    }
}
