use kit::auth::Role;
use serde_json::json;

use crate::support::*;

const ENTITIES: &str =
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id deviceId } } }";

#[tokio::test]
async fn an_entity_batch_of_many_users_is_one_sql_query() {
    let app = TestApp::new().await;
    let admin = app.with_role("admin", Role::Admin).await;
    let mut reps = Vec::new();
    for i in 0..25 {
        let user = app.register(&format!("fridge-{i}")).await;
        reps.push(json!({ "__typename": "User", "id": user["id"] }));
    }
    // Unknown and malformed ids resolve to null without failing the batch.
    reps.push(json!({ "__typename": "User", "id": uuid::Uuid::new_v4() }));
    reps.push(json!({ "__typename": "User", "id": "not-a-uuid" }));
    app.log.clear();
    let resp = app
        .gql(Some(&admin.access), ENTITIES, json!({ "r": reps }))
        .await;
    assert_no_errors(&resp);
    let entities = resp["data"]["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 27);
    assert_eq!(entities[0]["deviceId"], "fridge-0");
    assert_eq!(entities[24]["deviceId"], "fridge-24");
    assert!(entities[25].is_null() && entities[26].is_null());
    let statements = app.log.statements();
    let selects: Vec<_> = statements
        .iter()
        .filter(|s| s.contains("FROM \"users\""))
        .collect();
    assert_eq!(selects.len(), 1, "one batched query, got {statements:#?}");
}

#[tokio::test]
async fn the_subgraph_publishes_user_as_a_federation_entity() {
    let app = TestApp::new().await;
    let resp = app.gql(None, "{ _service { sdl } }", json!({})).await;
    let sdl = resp["data"]["_service"]["sdl"].as_str().unwrap();
    assert!(sdl.contains("type User @key(fields: \"id\")"), "{sdl}");
    assert!(sdl.contains("specs.apollo.dev/federation/v2"), "{sdl}");
}
