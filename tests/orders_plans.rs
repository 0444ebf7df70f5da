//! The committed supergraph with the orders subgraph: the gateway plans the
//! cross-subgraph order reads clients rely on.

use std::path::Path;

fn supergraph() -> gateway::Supergraph {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/supergraph.graphql");
    gateway::Supergraph::load(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_gateway_plans_a_users_orders_and_an_orders_product_names() {
    let supergraph = supergraph();
    for query in [
        "{ me { id orders(first: 5) { totalCount edges { node { number status total } } } cart { subtotal } } }",
        "query($id: ID!) { order(id: $id) { number items { sku quantity product { name } } customer { id deviceId } } }",
        "{ orders(status: CONFIRMED) { edges { node { number items { product { name stock { available } } } } } } }",
    ] {
        let planned = supergraph.plan(query, None);
        assert!(planned.is_ok(), "{query}: {:?}", planned.err());
    }
    assert!(
        supergraph
            .plan("{ order(id: \"x\") { items { product { nope } } } }", None)
            .is_err()
    );
}
