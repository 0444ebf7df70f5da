//! A users subgraph on its own fresh database, called through its real HTTP router.

use std::sync::Arc;

use axum::{body::Body, http::Request};
use chrono::Utc;
use diesel::{QueryDsl, SelectableHelper};
use kit::{
    auth::{Revocations, Role, TokenSettings, revocation_feed},
    db::{PgPool, StatementLog},
    events::{Bus, Consumer, ConsumerOptions, Event},
    testing::{SubgraphDb, TestClient},
};
use serde_json::{Value, json};
use users::{
    MailConfig, Notifications, NotificationsHandler, Users,
    accounts::NewAccount,
    db::{Notification, schema::notifications},
    throttle::ThrottleConfig,
};

pub use kit::testing::{KEYS, assert_no_errors, code, message};

pub const PASSWORD: &str = "correct-horse-battery";

/// The service credential of the test app's internal endpoint.
pub const SERVICE_TOKEN: &str = "test-service-token";

/// A users subgraph as `serve users` runs it: its outbox relayed to an
/// in-process bus, and its own access cut-offs loaded and followed.
pub struct TestApp {
    pub pool: PgPool,
    pub log: StatementLog,
    /// Where its events go.
    pub bus: Bus,
    client: TestClient,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    database: SubgraphDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Before the database goes: the relay and the feed use it.
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_throttle(ThrottleConfig::default()).await
    }

    /// An app whose failed logins are throttled by `throttle`.
    pub async fn with_throttle(throttle: ThrottleConfig) -> Self {
        let database = SubgraphDb::new(users::DB_SCHEMA, &users::MIGRATIONS).await;
        let revocations = Revocations::new();
        let cfg = users::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            db: database.config.clone(),
            keys: KEYS.clone(),
            tokens: TokenSettings {
                revocations: Some(revocations.clone()),
                ..TokenSettings::default()
            },
            events: Default::default(),
            rpc_token: SERVICE_TOKEN.into(),
            mail: MailConfig::default(),
            throttle,
        };
        let pool = database.pool.clone();
        let bus = Bus::in_process();
        let parts = users::build(&cfg, pool.clone(), bus.clone()).expect("users");
        let tasks = vec![
            tokio::spawn(Users::run_relay(parts.relay.clone())),
            tokio::spawn(revocation_feed::follow(
                revocations.clone(),
                bus.clone(),
                parts.access_changes,
            )),
        ];
        revocations.primed().await;
        Self {
            pool,
            log: database.log.clone(),
            bus,
            client: TestClient::new(parts.router),
            tasks,
            database,
        }
    }

    /// Raw HTTP request through the router, with the answer's headers.
    pub async fn exchange(&self, request: Request<Body>) -> (u16, axum::http::HeaderMap, Value) {
        self.client.exchange(request).await
    }

    /// Raw HTTP request through the router.
    pub async fn http(&self, request: Request<Body>) -> (u16, Value) {
        self.client.http(request).await
    }

    /// A GraphQL POST, optionally with a bearer token.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.client.gql(token, query, variables).await
    }

    pub async fn register(&self, device_id: &str) -> Value {
        let resp = self
            .gql(
                None,
                "mutation($i: RegisterInput!) { register(input: $i) { id deviceId role } }",
                json!({ "i": { "deviceId": device_id, "password": PASSWORD } }),
            )
            .await;
        assert_no_errors(&resp);
        resp["data"]["register"].clone()
    }

    pub async fn login_as(&self, device_id: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($d: String!, $p: String!) { login(deviceId: $d, password: $p) {
                accessToken refreshToken accessTokenExpiresAt refreshTokenExpiresAt user { id role } } }",
            json!({ "d": device_id, "p": password }),
        )
        .await
    }

    /// Registers `device_id` and logs it in.
    pub async fn customer(&self, device_id: &str) -> Tokens {
        self.register(device_id).await;
        self.login(device_id).await
    }

    pub async fn login(&self, device_id: &str) -> Tokens {
        let resp = self.login_as(device_id, PASSWORD).await;
        assert_no_errors(&resp);
        tokens(&resp["data"]["login"])
    }

    /// An account with `role`, created directly (roles other than CUSTOMER are admin-given), logged in.
    pub async fn with_role(&self, device_id: &str, role: Role) -> Tokens {
        users::accounts::register(
            &self.pool,
            NewAccount {
                device_id: device_id.into(),
                password: PASSWORD.into(),
                email: None,
                phone: None,
                role,
            },
        )
        .await
        .expect("create account");
        self.login(device_id).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Value {
        self.gql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken user { id role } } }",
            json!({ "t": refresh_token }),
        )
        .await
    }

    /// Registers a CUSTOMER with an e-mail address (or none); returns its id.
    pub async fn customer_with_email(&self, device_id: &str, email: Option<&str>) -> String {
        let account = users::accounts::register(
            &self.pool,
            NewAccount {
                device_id: device_id.into(),
                password: PASSWORD.into(),
                email: email.map(Into::into),
                phone: None,
                role: Role::Customer,
            },
        )
        .await
        .expect("create account");
        account.id.to_string()
    }

    /// Notification state over this app's pool, e-mailing through `smtp_url` when given.
    pub fn notifications(&self, smtp_url: Option<String>) -> Arc<Notifications> {
        let mail = MailConfig {
            smtp_url,
            ..MailConfig::default()
        };
        Arc::new(Notifications::new(self.pool.clone(), &mail).expect("mail settings"))
    }

    /// The `users.notifications` consumer, fed by hand through `apply`.
    pub fn consumer(&self, notifications: &Arc<Notifications>) -> Consumer<NotificationsHandler> {
        Consumer::new(
            Arc::new(NotificationsHandler::new(notifications.clone())),
            self.pool.clone(),
            Bus::in_process(),
            ConsumerOptions::default(),
        )
    }

    /// Every notification, oldest first.
    pub async fn notification_rows(&self) -> Vec<Notification> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.pool.get().await.unwrap();
        notifications::table
            .order(notifications::id)
            .select(Notification::as_select())
            .load(&mut conn)
            .await
            .unwrap()
    }

    /// The channel of every notification, oldest first.
    pub async fn channels(&self) -> Vec<String> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.pool.get().await.unwrap();
        notifications::table
            .order(notifications::id)
            .select(notifications::channel)
            .load(&mut conn)
            .await
            .unwrap()
    }

    /// How many rows of `table` exist.
    pub async fn count(&self, table: &str) -> i64 {
        self.database
            .scalar(&format!("SELECT count(*) FROM {table}"))
            .await
    }
}

pub fn tokens(session: &Value) -> Tokens {
    Tokens {
        access: session["accessToken"].as_str().expect("accessToken").into(),
        refresh: session["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .into(),
        user_id: session["user"]["id"].as_str().expect("user id").into(),
    }
}

/// The order every order event below is about, unless told otherwise.
pub const ORDER: &str = "0196f000-0000-7000-8000-000000000042";

/// An `order.status_changed` event of orders' outbox row `id`.
pub fn order_event(id: i64, customer: &str, number: &str, status: &str) -> Event {
    Event {
        id,
        source: "orders".into(),
        topic: "order.status_changed".into(),
        key: ORDER.into(),
        payload: json!({
            "orderId": ORDER, "number": number, "customerId": customer,
            "previousStatus": "RESERVED", "status": status, "reason": null,
            "at": "2026-11-22T10:00:00Z",
        }),
        at: Utc::now(),
    }
}

/// A `shipment.status_changed` event of logistics' outbox row `id`.
pub fn shipment_event(id: i64, customer: &str, order: &str, status: &str) -> Event {
    Event {
        id,
        source: "logistics".into(),
        topic: "shipment.status_changed".into(),
        key: "0196f000-0000-7000-8000-0000000000aa".into(),
        payload: json!({
            "shipmentId": "0196f000-0000-7000-8000-0000000000aa", "trackingId": "TRK-7",
            "orderId": order, "customerId": customer,
            "previousStatus": "IN_TRANSIT", "status": status, "at": "2026-11-22T12:00:00Z",
        }),
        at: Utc::now(),
    }
}
