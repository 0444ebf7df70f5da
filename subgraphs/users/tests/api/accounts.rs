use serde_json::json;

use crate::support::*;

const REGISTER: &str =
    "mutation($i: RegisterInput!) { register(input: $i) { id deviceId role email phone active } }";

#[tokio::test]
async fn register_trims_input_and_creates_a_customer() {
    let app = TestApp::new().await;
    let resp = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": "  fridge-1 ", "password": PASSWORD, "email": " Ann@Example.COM ", "phone": "+1 555 010 9999" } }),
        )
        .await;
    assert_no_errors(&resp);
    let user = &resp["data"]["register"];
    assert_eq!(user["deviceId"], "fridge-1");
    assert_eq!(user["role"], "CUSTOMER");
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["phone"], "+15550109999");
    assert_eq!(user["active"], true);
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn register_refuses_bad_input_and_writes_nothing() {
    let app = TestApp::new().await;
    let cases = [
        (
            json!({ "deviceId": "   ", "password": PASSWORD }),
            "deviceId",
        ),
        (
            json!({ "deviceId": "x".repeat(51), "password": PASSWORD }),
            "deviceId",
        ),
        (
            json!({ "deviceId": "tab\there", "password": PASSWORD }),
            "deviceId",
        ),
        (
            json!({ "deviceId": "d1", "password": "seven77" }),
            "password",
        ),
        (
            json!({ "deviceId": "d1", "password": "p".repeat(129) }),
            "password",
        ),
        (
            json!({ "deviceId": "d1", "password": PASSWORD, "email": "not-an-email" }),
            "email",
        ),
        (
            json!({ "deviceId": "d1", "password": PASSWORD, "phone": "12" }),
            "phone",
        ),
    ];
    for (input, field) in cases {
        let resp = app.gql(None, REGISTER, json!({ "i": input })).await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{input}: {resp}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], field, "{input}");
    }
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn fifty_characters_is_the_longest_device_id() {
    let app = TestApp::new().await;
    let id = "é".repeat(50);
    assert_eq!(app.register(&id).await["deviceId"], id.as_str());
}

#[tokio::test]
async fn duplicate_device_id_is_a_conflict() {
    let app = TestApp::new().await;
    app.register("fridge-1").await;
    let resp = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": " fridge-1", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(code(&resp), "CONFLICT");
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_whatever_its_case() {
    let app = TestApp::new().await;
    let first = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": "a", "password": PASSWORD, "email": "ann@example.com" } }),
        )
        .await;
    assert_no_errors(&first);
    let second = app
        .gql(
            None,
            REGISTER,
            json!({ "i": { "deviceId": "b", "password": PASSWORD, "email": "ANN@example.com" } }),
        )
        .await;
    assert_eq!(code(&second), "CONFLICT");
    assert!(message(&second).contains("email"), "{second}");
}

#[tokio::test]
async fn concurrent_registrations_of_one_device_id_let_exactly_one_succeed() {
    let app = TestApp::new().await;
    let attempts = (0..8).map(|i| {
        let app = &app;
        async move {
            app.gql(
                None,
                REGISTER,
                json!({ "i": { "deviceId": "race", "password": format!("{PASSWORD}{i}") } }),
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(won, 1, "{results:#?}");
    for lost in results.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(code(lost), "CONFLICT");
    }
    assert_eq!(app.count("users").await, 1);
}
