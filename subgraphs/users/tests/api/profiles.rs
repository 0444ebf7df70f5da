use serde_json::{Value, json};

use crate::support::*;

const UPDATE: &str = "mutation($i: ProfileInput!) { updateProfile(input: $i) {
    email phone
    shippingAddress { line1 line2 city region postalCode country }
    billingAddress { city country }
    defaultPaymentMethod { token label } } }";

fn address() -> Value {
    json!({ "line1": " 1 Orchard Way ", "city": "Springfield", "postalCode": "12345", "country": "us" })
}

#[tokio::test]
async fn update_profile_sets_keeps_and_clears_fields() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let set = app
        .gql(
            Some(&t.access),
            UPDATE,
            json!({ "i": {
                "email": "Ann@Example.com", "phone": "+44 20 7946 0958",
                "shippingAddress": address(), "billingAddress": address(),
                "defaultPaymentMethod": { "token": "tok_visa_4242", "label": "Visa •••• 4242" }
            } }),
        )
        .await;
    assert_no_errors(&set);
    let p = &set["data"]["updateProfile"];
    assert_eq!(p["email"], "ann@example.com");
    assert_eq!(p["phone"], "+442079460958");
    assert_eq!(p["shippingAddress"]["line1"], "1 Orchard Way");
    assert_eq!(p["shippingAddress"]["country"], "US");
    assert_eq!(p["billingAddress"]["city"], "Springfield");
    assert_eq!(p["defaultPaymentMethod"]["label"], "Visa •••• 4242");

    // Omitted fields are kept; explicit nulls clear.
    let cleared = app
        .gql(
            Some(&t.access),
            UPDATE,
            json!({ "i": { "phone": null, "billingAddress": null } }),
        )
        .await;
    assert_no_errors(&cleared);
    let p = &cleared["data"]["updateProfile"];
    assert_eq!(p["email"], "ann@example.com");
    assert_eq!(p["phone"], Value::Null);
    assert_eq!(p["billingAddress"], Value::Null);
    assert_eq!(p["shippingAddress"]["city"], "Springfield");
    assert_eq!(p["defaultPaymentMethod"]["token"], "tok_visa_4242");
}

#[tokio::test]
async fn update_profile_refuses_card_numbers_and_bad_fields_writing_nothing() {
    let app = TestApp::new().await;
    let t = app.customer("fridge-1").await;
    let cases = [
        json!({ "defaultPaymentMethod": { "token": "4242 4242 4242 4242" } }),
        json!({ "email": "nope", "phone": "+1 555 010 9999" }),
        json!({ "phone": "+1 555 010 9999", "shippingAddress": { "line1": "x", "city": "y", "postalCode": "1", "country": "USA" } }),
        json!({ "shippingAddress": { "line1": "  ", "city": "y", "postalCode": "1", "country": "US" } }),
    ];
    for input in cases {
        let resp = app
            .gql(Some(&t.access), UPDATE, json!({ "i": input }))
            .await;
        assert_eq!(code(&resp), "BAD_USER_INPUT", "{input}: {resp}");
    }
    let me = app
        .gql(
            Some(&t.access),
            "{ me { phone shippingAddress { city } defaultPaymentMethod { token } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "phone": null, "shippingAddress": null, "defaultPaymentMethod": null })
    );
}

#[tokio::test]
async fn update_profile_needs_a_session_and_unique_email() {
    let app = TestApp::new().await;
    let resp = app
        .gql(None, UPDATE, json!({ "i": { "phone": "+15550109999" } }))
        .await;
    assert_eq!(code(&resp), "UNAUTHENTICATED");

    let ann = app.customer("ann").await;
    let bob = app.customer("bob").await;
    assert_no_errors(
        &app.gql(
            Some(&ann.access),
            UPDATE,
            json!({ "i": { "email": "same@example.com" } }),
        )
        .await,
    );
    let taken = app
        .gql(
            Some(&bob.access),
            UPDATE,
            json!({ "i": { "email": "SAME@example.com" } }),
        )
        .await;
    assert_eq!(code(&taken), "CONFLICT");
}

#[tokio::test]
async fn contact_details_are_private_to_the_user_and_admins() {
    let app = TestApp::new().await;
    let ann = app.customer("ann").await;
    assert_no_errors(
        &app.gql(
            Some(&ann.access),
            UPDATE,
            json!({ "i": { "email": "ann@example.com" } }),
        )
        .await,
    );
    let bob = app.customer("bob").await;
    let admin = app.with_role("root", kit::auth::Role::Admin).await;
    let query = "query($id: ID!) { user(id: $id) { deviceId email } }";
    let as_bob = app
        .gql(Some(&bob.access), query, json!({ "id": ann.user_id }))
        .await;
    assert_eq!(code(&as_bob), "FORBIDDEN");
    let as_admin = app
        .gql(Some(&admin.access), query, json!({ "id": ann.user_id }))
        .await;
    assert_no_errors(&as_admin);
    assert_eq!(as_admin["data"]["user"]["email"], "ann@example.com");
}
