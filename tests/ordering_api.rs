//! The fleet's Ordering API v1 (`../shared/contracts/ordering-v1.md`) as
//! its devices use it: plain HTTP against `grocery dev`, on the REST
//! routes' own port (`REST_PORT`) and under `/api` of the gateway's port.
//! Every endpoint, every status and error body of the contract, 200
//! concurrent one-unit previews that never oversell, a retried restock that
//! stocks once, refresh tokens refused everywhere but `/api/client/refresh`,
//! and the OpenAPI document checked by a real validator.

mod deployment;
mod support;

use std::collections::HashSet;

use kit::testing::{RedisServer, TestDatabase};
use serde_json::{Value, json};
use support::{PASSWORD, Reply, free_port, gql, http, login, ok};

/// A device: the REST port and its token.
struct Device {
    port: u16,
    token: Option<String>,
}

impl Device {
    fn new(port: u16) -> Self {
        Self { port, token: None }
    }

    fn with(port: u16, token: &str) -> Self {
        Self {
            port,
            token: Some(token.to_owned()),
        }
    }

    /// POSTs `body` as JSON to `path`, with `headers`.
    async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            all.push(("authorization", auth.as_str()));
        }
        all.extend_from_slice(headers);
        http(self.port, "POST", path, &all, body.to_string().as_bytes()).await
    }
}

/// `reply` is the contract's error: `status`, and `{"status": "error",
/// "code": code, "message": …}`.
#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str) -> Value {
    let body = reply.json();
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body.get("serviceName").is_none(), "{body}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{}",
        reply.body
    );
    body
}

/// A product's available units, through GraphQL.
async fn available(gateway: u16, sku: &str) -> i64 {
    let data = ok(gql(
        gateway,
        None,
        "query($s: String!) { product(sku: $s) { stock { available } } }",
        json!({ "s": sku }),
    )
    .await);
    data["product"]["stock"]["available"].as_i64().unwrap()
}

/// Registers `device_id` over REST and signs in: (access, refresh).
async fn sign_up(port: u16, device_id: &str) -> (String, String) {
    let anon = Device::new(port);
    let reply = anon
        .post(
            "/api/client/register",
            json!({ "device_id": device_id, "password": "fridge-pass-1" }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = anon
        .post(
            "/api/client/login",
            json!({ "device_id": device_id, "password": "fridge-pass-1" }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ordering_api_answers_every_endpoint_and_error_of_the_contract() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:rest:{}", uuid::Uuid::new_v4().simple());
    let rest_port = free_port();
    let dev = support::start_dev(
        &db.config.url,
        &redis.url(),
        &stream,
        &[("REST_PORT", &rest_port.to_string())],
    );
    assert_eq!(
        dev.urls.get("rest").map(String::as_str),
        Some(format!("http://127.0.0.1:{rest_port}/api").as_str()),
        "grocery dev names the REST port: {:?}",
        dev.urls
    );
    let port = rest_port;
    let anon = Device::new(port);

    // --- register: 201, trimmed, 409 for a taken device id, 400 on bad input.
    let reply = anon
        .post(
            "/api/client/register",
            json!({ "device_id": "  fridge-7  ", "password": "fridge-pass-1", "email": " f7@example.com " }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!({ "status": "success", "message": "User registered successfully" })
    );
    let again = anon
        .post(
            "/api/client/register",
            json!({ "device_id": "fridge-7", "password": "fridge-pass-1" }),
            &[],
        )
        .await;
    assert_error(&again, 409, "CONFLICT");
    for bad in [
        json!({ "password": "fridge-pass-1" }),
        json!({ "device_id": "   ", "password": "fridge-pass-1" }),
        json!({ "device_id": "x".repeat(51), "password": "fridge-pass-1" }),
        json!({ "device_id": "fridge-8", "password": "short" }),
        json!({ "device_id": "fridge-8" }),
        json!({ "device_id": 42, "password": "fridge-pass-1" }),
        json!({ "device_id": "fridge\u{0}8", "password": "fridge-pass-1" }),
    ] {
        let reply = anon.post("/api/client/register", bad.clone(), &[]).await;
        assert_error(&reply, 400, "BAD_USER_INPUT");
    }

    // --- login: the trimmed id signs in; the same 401 for an unknown device
    // and a wrong password.
    let reply = anon
        .post(
            "/api/client/login",
            json!({ "device_id": "fridge-7", "password": "fridge-pass-1" }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = reply.json();
    let keys: HashSet<&str> = session
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["access_token", "refresh_token"]));
    let access = session["access_token"].as_str().unwrap().to_owned();
    let refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let wrong = anon
        .post(
            "/api/client/login",
            json!({ "device_id": "fridge-7", "password": "not-the-password" }),
            &[],
        )
        .await;
    let unknown = anon
        .post(
            "/api/client/login",
            json!({ "device_id": "no-such-fridge", "password": "not-the-password" }),
            &[],
        )
        .await;
    assert_eq!(
        assert_error(&wrong, 401, "UNAUTHENTICATED")["message"],
        assert_error(&unknown, 401, "UNAUTHENTICATED")["message"]
    );

    // --- preview: qty or quantity, a SKU twice is summed, stock reserved.
    let fridge = Device::with(port, &access);
    let apple_before = available(dev.gateway, "APPLE").await;
    let reply = fridge
        .post(
            "/api/client/order/preview",
            json!({ "items": [
                { "sku": "APPLE", "qty": 2 },
                { "sku": "BANANA", "quantity": 3 },
                { "sku": "APPLE", "qty": 1 },
            ] }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let preview = reply.json();
    assert_eq!(preview["status"], "reserved");
    assert_eq!(preview["items"], json!({ "APPLE": 3, "BANANA": 3 }));
    let order_id = preview["order_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&order_id).is_ok(), "{preview}");
    assert_eq!(available(dev.gateway, "APPLE").await, apple_before - 3);

    for bad in [
        json!({ "items": [] }),
        json!({ "items": [{ "sku": "APPLE", "qty": 0 }] }),
        json!({ "items": [{ "sku": "APPLE", "qty": -2 }] }),
        json!({ "items": [{ "sku": "APPLE", "qty": 1.5 }] }),
        json!({ "items": [{ "sku": "APPLE", "qty": "2" }] }),
        json!({ "items": [{ "sku": "APPLE", "qty": 1, "quantity": 1 }] }),
        json!({ "items": [{ "sku": "APPLE" }] }),
        json!({ "items": [{ "sku": "NO-SUCH-SKU", "qty": 1 }] }),
        json!({ "items": "APPLE" }),
        json!({ "items": [7] }),
        json!({}),
    ] {
        let reply = fridge
            .post("/api/client/order/preview", bad.clone(), &[])
            .await;
        assert_error(&reply, 400, "BAD_USER_INPUT");
    }

    // Short stock: 409 naming the SKU, and nothing stays reserved.
    let apple_now = available(dev.gateway, "APPLE").await;
    let milk = available(dev.gateway, "MILK").await;
    let short = fridge
        .post(
            "/api/client/order/preview",
            json!({ "items": [{ "sku": "APPLE", "qty": 1 }, { "sku": "MILK", "qty": milk + 1 }] }),
            &[],
        )
        .await;
    if milk < 1000 {
        let body = assert_error(&short, 409, "INSUFFICIENT_STOCK");
        assert!(body.to_string().contains("MILK"), "{body}");
        assert!(body.get("shortfall").is_some(), "details kept: {body}");
    } else {
        assert_error(&short, 400, "BAD_USER_INPUT");
    }
    assert_eq!(available(dev.gateway, "APPLE").await, apple_now);

    // --- confirm: 200 with a two-decimal price and a second-precision UTC
    // time; a retry with the same key answers the same; without it 400.
    let key = [("Idempotency-Key", "confirm-fridge-7-1")];
    let first = fridge
        .post(
            "/api/client/order/confirm",
            json!({ "order_id": order_id }),
            &key,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let confirmed = first.json();
    assert_eq!(confirmed["order_id"], order_id.as_str());
    assert_eq!(confirmed["status"], "completed");
    assert!(
        confirmed["total_price"].as_f64().unwrap() > 0.0,
        "{confirmed}"
    );
    let price_text = first
        .body
        .split("\"total_price\":")
        .nth(1)
        .unwrap()
        .split([',', '}'])
        .next()
        .unwrap();
    let (_, decimals) = price_text.split_once('.').expect("a decimal point");
    assert_eq!(decimals.len(), 2, "two decimals: {}", first.body);
    let stamp = confirmed["timestamp"].as_str().unwrap();
    assert_eq!(stamp.len(), 20, "{stamp}");
    assert!(stamp.ends_with('Z'), "{stamp}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "{stamp}"
    );
    let retried = fridge
        .post(
            "/api/client/order/confirm",
            json!({ "order_id": order_id }),
            &key,
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body, first.body, "the same answer");
    let paid = fridge
        .post(
            "/api/client/order/confirm",
            json!({ "order_id": order_id }),
            &[],
        )
        .await;
    let body = assert_error(&paid, 400, "INVALID_STATE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Already paid"),
        "{body}"
    );
    let unknown_order = fridge
        .post(
            "/api/client/order/confirm",
            json!({ "order_id": uuid::Uuid::new_v4() }),
            &[],
        )
        .await;
    assert_error(&unknown_order, 404, "NOT_FOUND");

    // Another customer's order is unknown to them.
    let (other, _) = sign_up(port, "fridge-9").await;
    let other = Device::with(port, &other);
    for path in ["/api/client/order/confirm", "/api/client/order/cancel"] {
        let foreign = other.post(path, json!({ "order_id": order_id }), &[]).await;
        assert_error(&foreign, 404, "NOT_FOUND");
    }

    // --- cancel: a paid order that has not shipped is refunded; twice is 400.
    let cancelled = fridge
        .post(
            "/api/client/order/cancel",
            json!({ "order_id": order_id }),
            &[],
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(
        cancelled.json(),
        json!({ "order_id": order_id, "status": "cancelled" })
    );
    let twice = fridge
        .post(
            "/api/client/order/cancel",
            json!({ "order_id": order_id }),
            &[],
        )
        .await;
    assert_error(&twice, 400, "INVALID_STATE");
    // A cancelled order cannot be confirmed.
    let late = fridge
        .post(
            "/api/client/order/confirm",
            json!({ "order_id": order_id }),
            &[],
        )
        .await;
    assert_error(&late, 400, "INVALID_STATE");

    // A shipped order cannot be cancelled.
    let reply = fridge
        .post(
            "/api/client/order/preview",
            json!({ "items": [{ "sku": "BREAD", "quantity": 1 }] }),
            &[],
        )
        .await;
    let shipped_id = reply.json()["order_id"].as_str().unwrap().to_owned();
    let reply = fridge
        .post(
            "/api/client/order/confirm",
            json!({ "order_id": shipped_id }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let admin = login(dev.gateway, "admin", PASSWORD).await;
    for status in ["PROCESSING", "SHIPPED"] {
        ok(gql(
            dev.gateway,
            Some(&admin),
            "mutation($o: ID!, $s: OrderStatus!) { updateOrderStatus(orderId: $o, status: $s) { status } }",
            json!({ "o": shipped_id, "s": status }),
        )
        .await);
    }
    let reply = fridge
        .post(
            "/api/client/order/cancel",
            json!({ "order_id": shipped_id }),
            &[],
        )
        .await;
    assert_error(&reply, 400, "INVALID_STATE");

    // --- refresh: body or bearer; rotated; an access token or a reused
    // refresh token is 401.
    let by_body = anon
        .post(
            "/api/client/refresh",
            json!({ "refresh_token": refresh }),
            &[],
        )
        .await;
    assert_eq!(by_body.status, 200, "{}", by_body.body);
    let rotated = by_body.json();
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    let by_bearer = Device::with(port, &new_refresh)
        .post("/api/client/refresh", json!({}), &[])
        .await;
    assert_eq!(by_bearer.status, 200, "{}", by_bearer.body);
    let newest = by_bearer.json();
    let with_access = anon
        .post(
            "/api/client/refresh",
            json!({ "refresh_token": access }),
            &[],
        )
        .await;
    assert_error(&with_access, 401, "UNAUTHENTICATED");
    let tampered = format!("{}x", newest["refresh_token"].as_str().unwrap());
    let reply = anon
        .post(
            "/api/client/refresh",
            json!({ "refresh_token": tampered }),
            &[],
        )
        .await;
    assert_error(&reply, 401, "UNAUTHENTICATED");
    let reused = anon
        .post(
            "/api/client/refresh",
            json!({ "refresh_token": refresh }),
            &[],
        )
        .await;
    assert_error(&reused, 401, "UNAUTHENTICATED");

    // A refresh token is refused everywhere else, and so is no token.
    let (fresh_access, fresh_refresh) = sign_up(port, "fridge-10").await;
    let with_refresh = Device::with(port, &fresh_refresh);
    let restock_body = json!({ "truck_id": "T-1", "supplier_id": "S-1", "items": [
        { "sku": "APPLE", "quantity": 1, "unit_cost": 0.5, "mfd_date": "2026-12-01", "expiry_date": "2026-12-30" }
    ] });
    for (path, body) in [
        (
            "/api/client/order/preview",
            json!({ "items": [{ "sku": "APPLE", "qty": 1 }] }),
        ),
        (
            "/api/client/order/confirm",
            json!({ "order_id": uuid::Uuid::new_v4() }),
        ),
        (
            "/api/client/order/cancel",
            json!({ "order_id": uuid::Uuid::new_v4() }),
        ),
        ("/api/truck/restock", restock_body.clone()),
    ] {
        let reply = with_refresh.post(path, body.clone(), &[]).await;
        assert_error(&reply, 401, "UNAUTHENTICATED");
        let reply = anon.post(path, body.clone(), &[]).await;
        assert_error(&reply, 401, "UNAUTHENTICATED");
        let garbage = Device::with(port, "not.a.jwt").post(path, body, &[]).await;
        assert_error(&garbage, 401, "UNAUTHENTICATED");
    }

    // An expired access token, signed with the stack's own key: 401 too.
    let expired = {
        use kit::auth::{Claims, KeyRing, SigningKey, TokenSettings, TokenType};
        let pem = std::fs::read_to_string(dev.home.join("keys/signing.pem")).unwrap();
        let ring = KeyRing::with_signing_key(SigningKey::from_pem(&pem).unwrap());
        let settings = TokenSettings::default();
        let past = chrono::Utc::now().timestamp() - 3600;
        ring.sign(&Claims {
            iss: settings.issuer,
            aud: settings.audience,
            sub: uuid::Uuid::new_v4(),
            role: kit::auth::RoleName::from_static("CUSTOMER"),
            exp: past + 900,
            iat: past,
            token_type: TokenType::Access,
            jti: uuid::Uuid::new_v4(),
            fam: None,
            access_epoch: 0,
        })
        .unwrap()
    };
    let reply = Device::with(port, &expired)
        .post(
            "/api/client/order/preview",
            json!({ "items": [{ "sku": "APPLE", "qty": 1 }] }),
            &[],
        )
        .await;
    assert_error(&reply, 401, "UNAUTHENTICATED");

    // --- restock: TRUCK only; a retry with the same key stocks once.
    let customer_restock = Device::with(port, &fresh_access)
        .post("/api/truck/restock", restock_body.clone(), &[])
        .await;
    assert_error(&customer_restock, 403, "FORBIDDEN");
    let truck_token = anon
        .post(
            "/api/client/login",
            json!({ "device_id": "truck-1", "password": PASSWORD }),
            &[],
        )
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let truck = Device::with(port, &truck_token);
    let eggs = available(dev.gateway, "EGGS").await;
    let delivery = json!({ "truck_id": "T-7", "supplier_id": "FARM-2", "items": [
        { "sku": "EGGS", "quantity": 12, "unit_cost": 0.25, "mfd_date": "2026-12-01", "expiry_date": "2026-12-28" }
    ] });
    let key = [("Idempotency-Key", "delivery-T-7-0001")];
    let first = truck
        .post("/api/truck/restock", delivery.clone(), &key)
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let receipt = first.json();
    assert_eq!(receipt["status"], "success");
    assert_eq!(receipt["message"], "Inventory updated");
    let transaction = receipt["transaction_id"].as_str().unwrap().to_owned();
    assert!(!transaction.is_empty());
    let retried = truck
        .post("/api/truck/restock", delivery.clone(), &key)
        .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.json()["transaction_id"], transaction.as_str());
    assert_eq!(available(dev.gateway, "EGGS").await, eggs + 12);
    for bad in [
        json!({ "truck_id": "T-7", "supplier_id": "FARM-2", "items": [] }),
        json!({ "truck_id": "T-7", "supplier_id": "FARM-2", "items": [
            { "sku": "EGGS", "quantity": 0, "unit_cost": 0.25, "mfd_date": "2026-12-01", "expiry_date": "2026-12-28" }] }),
        json!({ "truck_id": "T-7", "supplier_id": "FARM-2", "items": [
            { "sku": "EGGS", "quantity": 1, "unit_cost": -1, "mfd_date": "2026-12-01", "expiry_date": "2026-12-28" }] }),
        json!({ "truck_id": "T-7", "supplier_id": "FARM-2", "items": [
            { "sku": "EGGS", "quantity": 1, "unit_cost": 0.25, "mfd_date": "2026-12-29", "expiry_date": "2026-12-28" }] }),
        json!({ "truck_id": "T-7", "supplier_id": "FARM-2", "items": [
            { "sku": "EGGS", "quantity": 1, "unit_cost": "cheap", "mfd_date": "2026-12-01", "expiry_date": "2026-12-28" }] }),
        json!({ "supplier_id": "FARM-2", "items": [
            { "sku": "EGGS", "quantity": 1, "unit_cost": 0.25, "mfd_date": "2026-12-01", "expiry_date": "2026-12-28" }] }),
    ] {
        let reply = truck.post("/api/truck/restock", bad.clone(), &[]).await;
        assert_error(&reply, 400, "BAD_USER_INPUT");
    }
    assert_eq!(available(dev.gateway, "EGGS").await, eggs + 12);

    // --- the edge: malformed JSON 400, wrong content type 415, unknown path
    // 404, wrong method 405 with Allow, oversized 413.
    let auth = format!("Bearer {fresh_access}");
    let malformed = http(
        port,
        "POST",
        "/api/client/order/preview",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        b"{\"items\": [",
    )
    .await;
    assert_error(&malformed, 400, "BAD_REQUEST");
    let not_object = http(
        port,
        "POST",
        "/api/client/login",
        &[("content-type", "application/json")],
        b"[1, 2]",
    )
    .await;
    assert_error(&not_object, 400, "BAD_REQUEST");
    let text = http(
        port,
        "POST",
        "/api/client/login",
        &[("content-type", "text/plain")],
        br#"{"device_id": "fridge-7", "password": "fridge-pass-1"}"#,
    )
    .await;
    assert_error(&text, 415, "UNSUPPORTED_MEDIA_TYPE");
    let none = http(
        port,
        "POST",
        "/api/client/login",
        &[],
        br#"{"device_id": "fridge-7", "password": "fridge-pass-1"}"#,
    )
    .await;
    assert_error(&none, 415, "UNSUPPORTED_MEDIA_TYPE");
    for path in [
        "/api/client/nothing",
        "/api/client/order",
        "/api",
        "/nowhere",
    ] {
        let reply = http(
            port,
            "POST",
            path,
            &[("content-type", "application/json")],
            b"{}",
        )
        .await;
        assert_error(&reply, 404, "NOT_FOUND");
    }
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let reply = http(port, method, "/api/client/login", &[], b"").await;
        assert_error(&reply, 405, "METHOD_NOT_ALLOWED");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
    }
    let huge = format!("{{\"device_id\": \"{}\"}}", "x".repeat(300 * 1024));
    let reply = http(
        port,
        "POST",
        "/api/client/register",
        &[("content-type", "application/json")],
        huge.as_bytes(),
    )
    .await;
    assert_error(&reply, 413, "PAYLOAD_TOO_LARGE");

    // --- throttled logins: 429 with Retry-After.
    let mut throttled = None;
    for _ in 0..8 {
        let reply = anon
            .post(
                "/api/client/login",
                json!({ "device_id": "fridge-10", "password": "guessing-wrong" }),
                &[],
            )
            .await;
        if reply.status == 429 {
            throttled = Some(reply);
            break;
        }
        assert_error(&reply, 401, "UNAUTHENTICATED");
    }
    let throttled = throttled.expect("repeated failed logins are throttled");
    assert_error(&throttled, 429, "RATE_LIMITED");
    let retry: u64 = throttled
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");

    // --- the same API under /api of the gateway's own port.
    let reply = Device::new(dev.gateway)
        .post(
            "/api/client/login",
            json!({ "device_id": "fridge-9", "password": "fridge-pass-1" }),
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.header("x-request-id").is_some());

    // --- metrics labelled by route (dev serves /metrics on the API port).
    let metrics = http(dev.gateway, "GET", "/metrics", &[], b"").await;
    assert!(
        metrics.body.contains(
            "grocery_gateway_rest_requests_total{route=\"POST /api/client/login\",status=\"200\"}"
        ),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains(
        "grocery_gateway_rest_requests_total{route=\"POST /api/truck/restock\",status=\"201\"}"
    ));
    assert!(
        metrics
            .body
            .contains("graphql_requests_total{operation=\"OrderingConfirm\""),
        "REST calls count as their documents' operations too"
    );

    // --- the OpenAPI document, checked by openapi-spec-validator, and its page.
    let openapi = http(port, "GET", "/api/openapi.json", &[], b"").await;
    assert_eq!(openapi.status, 200);
    let document = openapi.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths: HashSet<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        HashSet::from([
            "/api/client/register",
            "/api/client/login",
            "/api/client/refresh",
            "/api/client/order/preview",
            "/api/client/order/confirm",
            "/api/client/order/cancel",
            "/api/truck/restock",
        ])
    );
    let confirm = &document["paths"]["/api/client/order/confirm"]["post"];
    assert!(
        confirm["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{confirm}"
    );
    assert_eq!(
        confirm["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["total_price"]
            ["type"],
        "number"
    );
    let file = std::env::temp_dir().join(format!("openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, &openapi.body).unwrap();
    let validator = deployment::venv().join("bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run `bash .ci/run` once, or `python3 -m venv {venv} && {venv}/bin/pip install openapi-spec-validator==0.7.2`",
        validator.display(),
        venv = deployment::venv().display()
    );
    let checked = std::process::Command::new(&validator)
        .args(["--schema", "3.1"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let page = http(port, "GET", "/api/docs", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for path in &paths {
        assert!(page.body.contains(path), "{path} on the docs page");
    }
    assert!(
        !page.body.contains("http://")
            && !page.body.contains("https://")
            && !page.body.contains("<script"),
        "the page loads nothing from elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_one_unit_previews_never_oversell() {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:rest:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    let port = dev.gateway;
    // Exactly 37 COFFEE free.
    let admin = login(dev.gateway, "admin", PASSWORD).await;
    let before = available(dev.gateway, "COFFEE").await;
    ok(gql(
        dev.gateway,
        Some(&admin),
        "mutation($d: Int!) { adjustStock(sku: \"COFFEE\", delta: $d, reason: \"test\") { sku } }",
        json!({ "d": 37 - before }),
    )
    .await);
    assert_eq!(available(dev.gateway, "COFFEE").await, 37);

    let mut tokens = Vec::new();
    for i in 0..4 {
        tokens.push(sign_up(port, &format!("rush-{i}")).await.0);
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let device = Device::with(port, &tokens[i % tokens.len()]);
            tokio::spawn(async move {
                device
                    .post(
                        "/api/client/order/preview",
                        json!({ "items": [{ "sku": "COFFEE", "qty": 1 }] }),
                        &[],
                    )
                    .await
            })
        })
        .collect();
    let mut reserved = 0;
    let mut orders = HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            200 => {
                reserved += 1;
                let body = reply.json();
                assert_eq!(body["items"], json!({ "COFFEE": 1 }));
                assert!(orders.insert(body["order_id"].as_str().unwrap().to_owned()));
            }
            _ => {
                assert_error(&reply, 409, "INSUFFICIENT_STOCK");
            }
        }
    }
    assert_eq!(reserved, 37, "every free unit reserved once, none more");
    assert_eq!(available(dev.gateway, "COFFEE").await, 0);
}
