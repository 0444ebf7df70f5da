//! Projection's unit tests: shapes, aliases, null propagation.
use hive_router_query_planner::utils::parsing::{safe_parse_operation, safe_parse_schema};
use serde_json::json;

use super::*;

const SCHEMA: &str = "type Query { products: [Product!]! me: User shelf: [Product] }
    interface Named { name: String! }
    type Product implements Named { sku: String! name: String! stock: Stock! price: String kind: Kind }
    enum Kind { FRESH FROZEN }
    type Stock { available: Int! }
    type User implements Named { name: String! }";

fn run(query: &str, data: Json, variables: Json) -> Json {
    let data = Value::from(data);
    let schema = safe_parse_schema(SCHEMA).unwrap();
    let document = safe_parse_operation(query).unwrap();
    let operation = document
        .definitions
        .iter()
        .find_map(|d| match d {
            graphql_tools::parser::query::Definition::Operation(op) => Some(op.clone()),
            _ => None,
        })
        .unwrap();
    let operation = OperationDefinition::from(operation);
    let Json::Object(vars) = variables else {
        panic!()
    };
    project(&data, &operation, &Shapes::new(&schema), &vars).data
}

#[test]
fn keeps_only_what_was_asked_under_its_alias() {
    // As merged from subgraphs: client aliases kept, key fields added by the planner.
    let data = json!({ "products": [{ "__typename": "Product", "id": "A", "sku": "A", "stock": { "available": 3, "onHand": 9 } }] });
    let out = run(
        "{ products { id: sku __typename stock { available } } }",
        data,
        json!({}),
    );
    assert_eq!(
        out,
        json!({ "products": [{ "id": "A", "__typename": "Product", "stock": { "available": 3 } }] })
    );
}

#[test]
fn a_null_in_a_non_null_field_nulls_the_nearest_nullable_parent() {
    // stock is non-null on Product, Product is non-null in a non-null list: all the way up.
    let data = json!({ "products": [{ "sku": "A", "stock": null }], "me": { "name": "Ann" } });
    let out = run(
        "{ products { sku stock { available } } me { name } }",
        data,
        json!({}),
    );
    assert_eq!(
        out,
        Json::Null,
        "products is non-null at the root, so data itself is null"
    );
    let data = json!({ "me": { "name": null } });
    assert_eq!(
        run("{ me { name } }", data, json!({})),
        json!({ "me": null })
    );
}

#[test]
fn enum_values_the_api_schema_does_not_have_become_null_with_an_error() {
    let schema = safe_parse_schema(SCHEMA).unwrap();
    let document = safe_parse_operation("{ products { sku kind } }").unwrap();
    let operation = document
        .definitions
        .iter()
        .find_map(|d| match d {
            graphql_tools::parser::query::Definition::Operation(op) => Some(op.clone()),
            _ => None,
        })
        .unwrap();
    let data = Value::from(
        json!({ "products": [{ "sku": "A", "kind": "FRESH" }, { "sku": "B", "kind": "HIDDEN" }] }),
    );
    let out = project(
        &data,
        &OperationDefinition::from(operation),
        &Shapes::new(&schema),
        &Map::new(),
    );
    assert_eq!(
        out.data,
        json!({ "products": [{ "sku": "A", "kind": "FRESH" }, { "sku": "B", "kind": null }] })
    );
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0]["path"], json!(["products", 1, "kind"]));
}

#[test]
fn a_null_inside_a_nullable_list_item_nulls_only_that_item() {
    let data = json!({ "shelf": [
        { "sku": "A", "stock": null },
        { "sku": "B", "stock": { "available": 1 } },
    ] });
    assert_eq!(
        run("{ shelf { sku stock { available } } }", data, json!({})),
        json!({ "shelf": [null, { "sku": "B", "stock": { "available": 1 } }] })
    );
}

#[test]
fn a_key_asked_twice_is_answered_once_with_both_selections() {
    let data = json!({ "products": [{ "__typename": "Product", "sku": "A", "name": "Apple", "stock": { "available": 3 } }] });
    assert_eq!(
        run(
            "{ products { stock { available } ... on Product { sku stock { __typename } } ... on Named { sku name } } }",
            data,
            json!({}),
        ),
        json!({ "products": [{ "stock": { "available": 3, "__typename": "Stock" }, "sku": "A", "name": "Apple" }] })
    );
}

#[test]
fn conditions_and_fragments_follow_variables_and_types() {
    let data = json!({ "me": { "__typename": "User", "name": "Ann", "n": "Ann" } });
    let query = "query($show: Boolean!) { me { ... on Named { name } ... on Product { sku } n: name @include(if: $show) } }";
    assert_eq!(
        run(query, data.clone(), json!({ "show": true })),
        json!({ "me": { "name": "Ann", "n": "Ann" } })
    );
    assert_eq!(
        run(query, data, json!({ "show": false })),
        json!({ "me": { "name": "Ann" } })
    );
}

#[test]
fn an_error_path_shows_only_where_the_operation_selects_a_field() {
    let schema = safe_parse_schema(SCHEMA).unwrap();
    let document = safe_parse_operation(
        "query($v: Boolean!) { products { sku ... on Product @skip(if: $v) { name } } }",
    )
    .unwrap();
    let operation = document
        .definitions
        .iter()
        .find_map(|d| match d {
            graphql_tools::parser::query::Definition::Operation(op) => Some(op.clone()),
            _ => None,
        })
        .unwrap();
    let operation = OperationDefinition::from(operation);
    let data = Value::from(json!({ "products": [{ "__typename": "Product", "sku": "A" }] }));
    let shapes = Shapes::new(&schema);
    let shows = |v: bool, path: Json| {
        let Json::Object(vars) = json!({ "v": v }) else {
            unreachable!()
        };
        super::shows(&data, &operation, &shapes, &vars, path.as_array().unwrap())
    };
    assert!(shows(false, json!(["products", 0, "name"])));
    assert!(!shows(true, json!(["products", 0, "name"])), "skipped");
    assert!(shows(true, json!(["products", 0, "sku"])));
    assert!(
        !shows(false, json!(["products", 0, "stock"])),
        "never selected"
    );
}
