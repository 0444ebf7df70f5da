//! Planning over grocery's own committed supergraph (users, catalog, inventory):
//! validation stops bad operations before any plan, cross-subgraph fields
//! become entity fetches, and plans are cached per normalized operation.

use std::sync::LazyLock;

use gateway::{PlanError, Supergraph};
use serde_json::Value;

static SUPERGRAPH: LazyLock<Supergraph> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql");
    Supergraph::load(&std::fs::read_to_string(path).expect("committed supergraph"))
        .expect("supergraph loads")
});

/// Every fetch of a plan as (subgraph, is it an entity fetch), in plan order.
fn fetches(plan: &Value) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    fn walk(node: &Value, found: &mut Vec<(String, bool)>) {
        match node {
            Value::Object(map) => {
                if let (Some(Value::String(kind)), Some(Value::String(service))) =
                    (map.get("kind"), map.get("serviceName"))
                    && kind.contains("Fetch")
                {
                    let entity =
                        map.get("requires").is_some_and(|r| !r.is_null()) || kind == "BatchFetch";
                    found.push((service.clone(), entity));
                }
                map.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    walk(plan, &mut found);
    found
}

fn plan(query: &str) -> Value {
    serde_json::to_value(
        &*SUPERGRAPH
            .plan(query, None)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .plan,
    )
    .unwrap()
}

#[test]
fn the_supergraph_knows_every_subgraph_and_its_url() {
    let subgraphs = SUPERGRAPH.subgraphs();
    for name in ["users", "catalog", "inventory"] {
        assert!(subgraphs.contains_key(name), "{name} in {subgraphs:?}");
    }
    assert_eq!(subgraphs["inventory"], "http://127.0.0.1:4003/graphql");
    let api = SUPERGRAPH.api_sdl();
    assert!(
        api.contains("unitPrice") && !api.contains("join__"),
        "the API schema hides federation internals"
    );
}

#[test]
fn fields_of_one_subgraph_are_one_root_fetch() {
    assert_eq!(
        fetches(&plan("{ me { deviceId role } }")),
        [("users".to_string(), false)]
    );
    assert_eq!(
        fetches(&plan(
            "mutation { register(input: { deviceId: \"d\", password: \"pppppppp\" }) { id } }"
        )),
        [("users".to_string(), false)]
    );
}

#[test]
fn stock_and_price_on_products_are_fetched_from_inventory_by_sku() {
    let plan =
        plan("{ products(first: 2) { edges { node { name stock { available } unitPrice } } } }");
    assert_eq!(
        fetches(&plan),
        [
            ("catalog".to_string(), false),
            ("inventory".to_string(), true)
        ],
        "{plan:#}"
    );
    let text = plan.to_string();
    assert!(text.contains("_entities"), "{plan:#}");
}

#[test]
fn invalid_operations_are_refused_before_planning_with_codes() {
    let unknown = SUPERGRAPH
        .plan("{ products { edges { node { colour } } } }", None)
        .unwrap_err();
    assert!(matches!(unknown, PlanError::Validation(_)));
    assert_eq!(unknown.code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(unknown.to_string().contains("colour"), "{unknown}");
    let bad_argument = SUPERGRAPH
        .plan("{ product(sku: 5) { name } }", None)
        .unwrap_err();
    assert_eq!(bad_argument.code(), "GRAPHQL_VALIDATION_FAILED");
    let unparsable = SUPERGRAPH.plan("{ products { ", None).unwrap_err();
    assert_eq!(unparsable.code(), "GRAPHQL_PARSE_FAILED");
    let missing = SUPERGRAPH
        .plan("query A { me { id } } query B { me { id } }", Some("C"))
        .unwrap_err();
    assert_eq!(missing.code(), "GRAPHQL_VALIDATION_FAILED");
}

#[test]
fn plans_are_cached_per_normalized_operation() {
    // Spelled differently (fragment, spacing, operation name), normalized the same.
    let a = "query Stock { products(first: 1) { edges { node { sku stock { onHand } } } } }";
    let b = "query Stock { products(first: 1) { edges { node { ...F } } } } fragment F on Product { sku stock { onHand } }";
    let first = SUPERGRAPH.plan(a, None).unwrap();
    let second = SUPERGRAPH.plan(b, Some("Stock")).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first.plan, &second.plan),
        "the second spelling reuses the cached plan"
    );
    let again = SUPERGRAPH.plan(a, None).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first.plan, &again.plan),
        "the same text is served from the text cache"
    );
}

#[test]
fn operations_beyond_the_limits_are_refused_before_planning() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/supergraph.graphql");
    let tight = Supergraph::load(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .with_limits(gateway::pipeline::limits::Limits {
            max_depth: 3,
            max_aliases: 1,
            max_root_fields: 2,
            ..Default::default()
        });
    let deep = tight
        .plan("{ products { edges { node { sku } } } }", None)
        .unwrap_err();
    assert!(
        matches!(deep, PlanError::Limit(ref e) if e.message.contains("4 levels")),
        "{deep}"
    );
    assert_eq!(deep.code(), "MAX_DEPTH_LIMIT");
    // A fragment cannot hide depth: it is inlined before counting.
    let hidden = tight
        .plan(
            "{ products { ...P } } fragment P on ProductConnection { edges { node { sku } } }",
            None,
        )
        .unwrap_err();
    assert!(matches!(hidden, PlanError::Limit(_)), "{hidden}");
    let aliased = tight
        .plan("{ a: me { id } b: me { id } }", None)
        .unwrap_err();
    assert!(
        matches!(aliased, PlanError::Limit(ref e) if e.message.contains("aliases")),
        "{aliased}"
    );
    let wide = tight
        .plan(
            "{ me { id } product(sku: \"A\") { sku } products { totalCount } }",
            None,
        )
        .unwrap_err();
    assert!(
        matches!(wide, PlanError::Limit(ref e) if e.message.contains("root fields")),
        "{wide}"
    );
    assert!(
        tight
            .plan("{ me { id } product(sku: \"A\") { sku } }", None)
            .is_ok()
    );
}

#[test]
fn a_mutations_plan_is_known_as_one_so_its_reads_are_never_shared() {
    let planned = |query: &str| SUPERGRAPH.plan(query, None).unwrap().plan;
    // The mutation's own fetch, then reads of other subgraphs after it.
    let mutation = planned(
        "mutation { confirmOrder(orderId: \"o\") { id items { product { name stock { available } } } } }",
    );
    assert!(fetches(&serde_json::to_value(&*mutation).unwrap()).len() > 1);
    assert!(gateway::execution::mutates(&mutation));
    assert!(!gateway::execution::mutates(&planned(
        "{ products(first: 2) { edges { node { name stock { available } } } } }"
    )));
}
