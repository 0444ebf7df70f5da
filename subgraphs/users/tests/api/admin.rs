use kit::auth::Role;
use serde_json::{Value, json};

use crate::support::*;

const USERS: &str = "query($first: Int, $after: String, $search: String, $role: Role) {
    users(first: $first, after: $after, search: $search, role: $role) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { deviceId role } } } }";

fn device_ids(resp: &Value) -> Vec<String> {
    resp["data"]["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["deviceId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn admins_page_through_users_in_registration_order() {
    let app = TestApp::new().await;
    let admin = app.with_role("admin", Role::Admin).await;
    for i in 0..5 {
        app.register(&format!("fridge-{i}")).await;
    }
    let page1 = app
        .gql(Some(&admin.access), USERS, json!({ "first": 4 }))
        .await;
    assert_no_errors(&page1);
    assert_eq!(page1["data"]["users"]["totalCount"], 6);
    assert_eq!(
        device_ids(&page1),
        ["admin", "fridge-0", "fridge-1", "fridge-2"]
    );
    assert_eq!(page1["data"]["users"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["data"]["users"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .gql(
            Some(&admin.access),
            USERS,
            json!({ "first": 4, "after": cursor }),
        )
        .await;
    assert_eq!(device_ids(&page2), ["fridge-3", "fridge-4"]);
    assert_eq!(page2["data"]["users"]["pageInfo"]["hasNextPage"], false);

    let search = app
        .gql(Some(&admin.access), USERS, json!({ "search": "GE-3" }))
        .await;
    assert_eq!(device_ids(&search), ["fridge-3"]);
    assert_eq!(search["data"]["users"]["totalCount"], 1);
    let admins = app
        .gql(Some(&admin.access), USERS, json!({ "role": "ADMIN" }))
        .await;
    assert_eq!(device_ids(&admins), ["admin"]);
    // `%` is a literal, not a wildcard.
    let literal = app
        .gql(Some(&admin.access), USERS, json!({ "search": "%" }))
        .await;
    assert_eq!(literal["data"]["users"]["totalCount"], 0);
}

#[tokio::test]
async fn listing_users_is_for_admins_with_sane_arguments() {
    let app = TestApp::new().await;
    let customer = app.customer("fridge-1").await;
    assert_eq!(
        code(&app.gql(None, USERS, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&app.gql(Some(&customer.access), USERS, json!({})).await),
        "FORBIDDEN"
    );
    let admin = app.with_role("admin", Role::Admin).await;
    assert_eq!(
        code(
            &app.gql(Some(&admin.access), USERS, json!({ "first": 101 }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(
            &app.gql(Some(&admin.access), USERS, json!({ "first": -1 }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(
            &app.gql(Some(&admin.access), USERS, json!({ "after": "!!" }))
                .await
        ),
        "BAD_USER_INPUT"
    );
}

const SET_ROLE: &str =
    "mutation($id: ID!, $role: Role!) { setRole(userId: $id, role: $role) { id role } }";

#[tokio::test]
async fn set_role_is_admin_only_and_shows_in_the_next_token() {
    let app = TestApp::new().await;
    let truck = app.customer("truck-9").await;
    let admin = app.with_role("admin", Role::Admin).await;

    let denied = app
        .gql(
            Some(&truck.access),
            SET_ROLE,
            json!({ "id": truck.user_id, "role": "ADMIN" }),
        )
        .await;
    assert_eq!(code(&denied), "FORBIDDEN");
    let own = app
        .gql(
            Some(&admin.access),
            SET_ROLE,
            json!({ "id": admin.user_id, "role": "CUSTOMER" }),
        )
        .await;
    assert_eq!(code(&own), "INVALID_STATE");
    let missing = app
        .gql(
            Some(&admin.access),
            SET_ROLE,
            json!({ "id": uuid::Uuid::new_v4(), "role": "TRUCK" }),
        )
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
    let malformed = app
        .gql(
            Some(&admin.access),
            SET_ROLE,
            json!({ "id": "nope", "role": "TRUCK" }),
        )
        .await;
    assert_eq!(code(&malformed), "BAD_USER_INPUT");

    let ok = app
        .gql(
            Some(&admin.access),
            SET_ROLE,
            json!({ "id": truck.user_id, "role": "TRUCK" }),
        )
        .await;
    assert_eq!(ok["data"]["setRole"]["role"], "TRUCK");
    let refreshed = app.refresh(&truck.refresh).await;
    assert_eq!(refreshed["data"]["refreshSession"]["user"]["role"], "TRUCK");
}

const DEACTIVATE: &str = "mutation($id: ID!) { deactivateUser(userId: $id) { active } }";
const REACTIVATE: &str = "mutation($id: ID!) { reactivateUser(userId: $id) { active } }";

#[tokio::test]
async fn a_deactivated_user_can_neither_log_in_nor_refresh_until_reactivated() {
    let app = TestApp::new().await;
    let admin = app.with_role("admin", Role::Admin).await;
    let user = app.customer("fridge-1").await;
    let second_session = app.login("fridge-1").await;

    let resp = app
        .gql(
            Some(&user.access),
            DEACTIVATE,
            json!({ "id": user.user_id }),
        )
        .await;
    assert_eq!(code(&resp), "FORBIDDEN");
    let resp = app
        .gql(
            Some(&admin.access),
            DEACTIVATE,
            json!({ "id": admin.user_id }),
        )
        .await;
    assert_eq!(code(&resp), "INVALID_STATE");

    let resp = app
        .gql(
            Some(&admin.access),
            DEACTIVATE,
            json!({ "id": user.user_id }),
        )
        .await;
    assert_eq!(resp["data"]["deactivateUser"]["active"], false);
    assert_eq!(
        code(&app.login_as("fridge-1", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(code(&app.refresh(&user.refresh).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&app.refresh(&second_session.refresh).await),
        "UNAUTHENTICATED"
    );

    let resp = app
        .gql(
            Some(&admin.access),
            REACTIVATE,
            json!({ "id": user.user_id }),
        )
        .await;
    assert_eq!(resp["data"]["reactivateUser"]["active"], true);
    // Old refresh tokens stay revoked; a new login works.
    assert_eq!(code(&app.refresh(&user.refresh).await), "UNAUTHENTICATED");
    assert_no_errors(&app.login_as("fridge-1", PASSWORD).await);
}

#[tokio::test]
async fn a_deactivated_admins_unexpired_token_loses_its_powers_at_once() {
    let app = TestApp::new().await;
    let root = app.with_role("root", Role::Admin).await;
    let other = app.with_role("other-admin", Role::Admin).await;
    let victim = app.customer("fridge-1").await;
    let resp = app
        .gql(
            Some(&root.access),
            DEACTIVATE,
            json!({ "id": other.user_id }),
        )
        .await;
    assert_no_errors(&resp);
    // `other` still holds a signed, unexpired ADMIN access token…
    let resp = app
        .gql(
            Some(&other.access),
            SET_ROLE,
            json!({ "id": victim.user_id, "role": "ADMIN" }),
        )
        .await;
    assert_eq!(code(&resp), "UNAUTHENTICATED", "{resp}");
    let resp = app.gql(Some(&other.access), USERS, json!({})).await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");
    // …and a demoted admin is refused too.
    let demoted = app.with_role("demoted", Role::Admin).await;
    assert_no_errors(
        &app.gql(
            Some(&root.access),
            SET_ROLE,
            json!({ "id": demoted.user_id, "role": "CUSTOMER" }),
        )
        .await,
    );
    let resp = app.gql(Some(&demoted.access), USERS, json!({})).await;
    assert_eq!(code(&resp), "FORBIDDEN");
}
