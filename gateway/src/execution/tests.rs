use std::sync::Arc;

use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::FlattenNodePathSegment,
};
use serde_json::{Value as Json, json};

use super::{
    context::Execution,
    errors::{flatten_path_text, repath},
    merge::{Answer, answer_errors, merge_entities},
    paths::{PathId, Paths, ROOT, Seg, path_json, targets},
    representations::{Batch, projects_to, representations},
};
use crate::value::Value;
use crate::value::{deep_merge, deep_merge_ref};
use crate::{execution::projection::Shapes, subgraph::SubgraphResponse};

#[test]
fn flatten_paths_read_as_the_planner_writes_them() {
    use FlattenNodePathSegment::{Field, List, TypeCondition};
    let products = [
        Field("products".into()),
        List,
        TypeCondition(["Book".to_owned(), "Film".to_owned()].into()),
        Field("reviews".into()),
    ];
    let me = [Field("me".into())];
    assert_eq!(
        flatten_path_text(&[&products, &me]),
        "products.@|[Book|Film].reviews, me"
    );
}

fn fields(names: &[(&str, Option<&str>)]) -> SelectionSet {
    SelectionSet {
        items: names
            .iter()
            .map(|(name, alias)| {
                SelectionItem::Field(
                    hive_router_query_planner::ast::selection_set::FieldSelection {
                        name: (*name).into(),
                        alias: alias.map(Into::into),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn representations_are_deduplicated_without_building_repeats() {
    let schema = hive_router_query_planner::utils::parsing::safe_parse_schema(
        "type Query { ps: [P] } type P { upc: String, name: String }",
    )
    .unwrap();
    let types = Shapes::new(&schema);
    let mut data = Value::from(json!({ "ps": [
        { "__typename": "P", "upc": "1", "name": "a" },
        { "__typename": "P", "upc": "2", "name": "b" },
        { "__typename": "P", "upc": "1", "name": "c" },
        { "__typename": "P", "name": "no key" },
    ] }));
    let ps = [
        FlattenNodePathSegment::Field("ps".into()),
        FlattenNodePathSegment::List,
    ];
    let paths: &[&[FlattenNodePathSegment]] = &[&ps];
    let requires = fields(&[("__typename", None), ("upc", None)]);
    let batch = representations(&mut data, paths, &requires, None, &types);
    let owners = batch.owner_paths();
    let Batch { reps, visits, .. } = batch;
    assert_eq!(
        reps,
        [
            Value::from(json!({ "__typename": "P", "upc": "1" })),
            Value::from(json!({ "__typename": "P", "upc": "2" }))
        ]
    );
    assert_eq!(owners.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(owners[0][1], [Seg::Key("ps"), Seg::Index(2)]);
    assert_eq!(visits, [Some((0, 0)), Some((1, 0)), Some((0, 1)), None]);
    // Written under an alias, compared under it.
    let aliased = fields(&[("__typename", None), ("upc", Some("key"))]);
    let reps = representations(&mut data, paths, &aliased, None, &types).reps;
    assert_eq!(
        reps[0],
        Value::from(json!({ "__typename": "P", "key": "1" }))
    );
    assert_eq!(reps.len(), 2);
    // A key selected twice still lands on one representation.
    let twice = fields(&[("__typename", None), ("upc", None), ("upc", None)]);
    let Batch { reps, owners, .. } = representations(&mut data, paths, &twice, None, &types);
    let owners: Vec<Vec<PathId>> = owners;
    assert_eq!(reps.len(), 2);
    assert_eq!(owners[0].len(), 2);
    assert!(!projects_to(&data["ps"][0], &twice, &types, &reps[0]));
    assert!(projects_to(
        &data["ps"][2],
        &requires,
        &types,
        &Value::from(json!({ "__typename": "P", "upc": "1" }))
    ));
    assert!(!projects_to(
        &data["ps"][1],
        &requires,
        &types,
        &Value::from(json!({ "__typename": "P", "upc": "1" }))
    ));
}

#[test]
fn answers_reach_every_owner_even_when_the_tree_moved_meanwhile() {
    let schema = hive_router_query_planner::utils::parsing::safe_parse_schema(
        "type Query { ps: [P] } type P { upc: String, name: String }",
    )
    .unwrap();
    let types = Shapes::new(&schema);
    let ps = [
        FlattenNodePathSegment::Field("ps".into()),
        FlattenNodePathSegment::List,
    ];
    let paths: &[&[FlattenNodePathSegment]] = &[&ps];
    let requires = fields(&[("__typename", None), ("upc", None)]);
    let mut data = Value::from(json!({ "ps": [
        { "__typename": "P", "upc": "1" },
        { "__typename": "P", "upc": "2" },
        { "__typename": "P", "upc": "1" },
    ] }));
    let batch = representations(&mut data, paths, &requires, None, &types);
    let answer = Value::from(json!([{ "name": "one" }, { "name": "two" }]));
    let names = |data: &Value| -> Vec<Json> {
        (0..3).map(|i| Json::from(&data["ps"][i]["name"])).collect()
    };
    let merged = |data: Value| {
        // Taken from an answer of its own, or copied from one shared
        // with other requests: the same result.
        let [owned, shared] =
            [Answer::Owned(answer.clone()), Answer::Shared(&answer)].map(|entities| {
                let mut state = Execution {
                    data: data.clone(),
                    errors: Vec::new(),
                };
                merge_entities(&mut state, entities, &batch, paths, None, &types);
                state.data
            });
        assert_eq!(owned, shared);
        owned
    };
    assert_eq!(
        names(&merged(data.clone())),
        [json!("one"), json!("two"), json!("one")]
    );
    // Another branch appended an object: the walk meets one more than was asked for.
    let mut longer = data.clone();
    if let Some(Value::Array(items)) = longer.get_mut("ps") {
        let mut more = std::mem::take(items).into_vec();
        more.push(Value::from(json!({ "__typename": "P", "upc": "3" })));
        *items = more.into();
    }
    let longer = merged(longer);
    assert_eq!(names(&longer), [json!("one"), json!("two"), json!("one")]);
    assert_eq!(longer["ps"][3].get("name"), None);
    // The walk no longer meets the second object: the rest go by their paths.
    let mut gap = data;
    if let Some(Value::Array(items)) = gap.get_mut("ps") {
        items[1] = Value::Null;
    }
    let gap = merged(gap);
    assert_eq!(gap["ps"][0]["name"], Value::from("one"));
    assert_eq!(gap["ps"][2]["name"], Value::from("one"));
}

#[test]
fn paths_share_prefixes_and_answer_exactly_the_path_added() {
    use Seg::{Index as I, Key as K};
    let added: [&[Seg<'_>]; 6] = [
        &[K("users"), I(0), K("reviews"), I(0), K("product")],
        &[K("users"), I(0), K("reviews"), I(1), K("product")],
        &[K("users"), I(1), K("reviews"), I(0), K("product")],
        &[K("users"), I(1)],
        &[],
        &[K("top"), I(0)],
    ];
    let mut paths = Paths::default();
    let ids: Vec<PathId> = added.iter().map(|at| paths.add(at)).collect();
    // Each of the later ones branched off its predecessor: 5 + 2 + 4 + 0 + 0 + 2 nodes.
    assert_eq!(paths.nodes.len(), 13);
    let up = |id: PathId, n: usize| (0..n).fold(id, |id, _| paths.nodes[id as usize].0);
    assert_eq!(
        up(ids[2], 3),
        ids[3],
        "a prefix of an added path is a node of it"
    );
    assert_eq!(ids[4], ROOT);
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(paths.path(id), added[i]);
        for (j, other) in added.iter().enumerate() {
            assert_eq!(paths.is(id, other), i == j, "{:?} is {:?}", added[i], other);
        }
    }
    assert!(!paths.is(ids[0], &[K("users"), I(0), K("reviews"), I(0)]));
    assert!(!paths.is(
        ids[0],
        &[K("x"), K("users"), I(0), K("reviews"), I(0), K("product")]
    ));
}

#[test]
fn a_shared_answer_is_read_in_place_and_an_unshared_one_taken() {
    let response = SubgraphResponse {
        data: Value::from(json!({ "_entities": [{ "name": "one" }] })),
        errors: vec![json!({ "message": "half" })],
        bytes: 0,
        cache_control: None,
    };
    let mut mine = Arc::new(response.clone());
    let mut ours = Arc::new(response.clone());
    let other = ours.clone();
    assert_eq!(answer_errors(&mut ours), response.errors);
    assert!(matches!(
        Answer::of(&mut ours, Some("_entities")),
        Answer::Shared(v) if *v == response.data["_entities"]
    ));
    assert_eq!(
        other.errors, response.errors,
        "the other holder's copy is intact"
    );
    assert_eq!(answer_errors(&mut mine), response.errors);
    assert!(mine.errors.is_empty(), "taken, not copied");
    assert!(matches!(
        Answer::of(&mut mine, Some("_entities")),
        Answer::Owned(v) if v == response.data["_entities"]
    ));
    assert!(matches!(
        Answer::of(&mut mine, Some("none")),
        Answer::Owned(Value::Null)
    ));
    // Changing a shared answer changes a copy.
    let mut part = Answer::of(&mut ours, None);
    *part.to_mut() = Value::Null;
    assert_eq!(other.data, response.data);
}

#[test]
fn deep_merge_adds_fields_and_keeps_data_over_null() {
    let into = Value::from(json!({ "p": [{ "sku": "A" }, { "sku": "B" }], "x": 1, "s": "old" }));
    let from = Value::from(
        json!({ "p": [{ "stock": 1 }, { "stock": 2 }], "x": null, "s": "new", "n": { "a": [1] } }),
    );
    let merged = Value::from(
        json!({ "p": [{ "sku": "A", "stock": 1 }, { "sku": "B", "stock": 2 }], "x": 1, "s": "new", "n": { "a": [1] } }),
    );
    let mut a = into.clone();
    deep_merge(&mut a, from.clone());
    assert_eq!(a, merged);
    // The copying merge answers the same.
    let mut b = into;
    deep_merge_ref(&mut b, &from);
    assert_eq!(b, merged);
}

#[test]
fn flatten_paths_find_every_object_through_lists() {
    let mut data = Value::from(
        json!({ "products": { "edges": [{ "node": { "sku": "A" } }, { "node": null }, { "node": { "sku": "B" } }] } }),
    );
    let path = [
        FlattenNodePathSegment::Field("products".into()),
        FlattenNodePathSegment::Field("edges".into()),
        FlattenNodePathSegment::List,
        FlattenNodePathSegment::Field("node".into()),
    ];
    let schema = hive_router_query_planner::utils::parsing::safe_parse_schema(
        "type Query { products: Products } type Products { edges: [Edge] } type Edge { node: Node } type Node { sku: String }",
    )
    .unwrap();
    let found = targets(&mut data, &path, &Shapes::new(&schema));
    let found: Vec<Vec<Json>> = found.iter().map(|p| path_json(p)).collect();
    assert_eq!(
        found,
        [
            vec![json!("products"), json!("edges"), json!(0), json!("node")],
            vec![json!("products"), json!("edges"), json!(2), json!("node")]
        ]
    );
}

#[test]
fn entity_errors_land_on_every_owner_path() {
    let owners = vec![vec![
        vec![Seg::Key("a"), Seg::Index(0)],
        vec![Seg::Key("b")],
    ]];
    let error = json!({
        "message": "boom",
        "path": ["_entities", 0, "stock"],
        "locations": [{ "line": 1, "column": 80 }],
    });
    let repathed = repath(error, "inventory", "_entities", &owners, None);
    assert!(
        repathed.iter().all(|e| e.get("locations").is_none()),
        "subgraph locations do not describe the client's document"
    );
    assert_eq!(repathed.len(), 2);
    assert_eq!(repathed[0]["path"], json!(["a", 0, "stock"]));
    assert_eq!(repathed[1]["path"], json!(["b", "stock"]));
    assert_eq!(repathed[1]["extensions"]["serviceName"], "inventory");
}
