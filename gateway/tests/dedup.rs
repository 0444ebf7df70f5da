//! In-flight deduplication through the whole gateway: concurrent identical
//! client requests over real subgraphs on 127.0.0.1, whose slow fields wait
//! at a gate the test opens once every client's fetch is accounted for
//! (sent to the subgraph, or counted as deduplicated in `/metrics`). Nothing
//! depends on timing: while the gate is shut, a fetch that went out is
//! still in flight, so an identical one must join it.
//!
//! `accounts` owns `User` (`me`, answered at once) and a `bump` mutation
//! that waits at the gate; `reviews` adds `User.token`, an entity field that
//! waits at the gate and answers the bearer it was sent.

mod support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering::SeqCst},
};

use async_graphql::{Context, EmptySubscription, ID, Object, Schema, SimpleObject};
use axum::{body::Bytes, http::HeaderMap};
use serde_json::{Value, json};
use support::Served;

/// Shut until the test opens it: what the slow fields wait for.
#[derive(Clone)]
struct Gate(tokio::sync::watch::Receiver<bool>);

impl Gate {
    async fn passed(&self) {
        let mut gate = self.0.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
}

/// The bearer the subgraph was sent.
struct Bearer(String);

#[derive(SimpleObject)]
struct User {
    id: ID,
    name: String,
}

struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> User {
        User {
            id: ID("u1".into()),
            name: "Ada".into(),
        }
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User {
            id,
            name: "Ada".into(),
        }
    }
}

struct AccountsMutation;

#[Object(name = "Mutation")]
impl AccountsMutation {
    /// Waits at the gate: identical mutations must all be in flight at once.
    async fn bump(&self, ctx: &Context<'_>) -> i32 {
        ctx.data_unchecked::<Gate>().passed().await;
        1
    }
}

struct ReviewsUser {
    id: ID,
}

#[Object(name = "User")]
impl ReviewsUser {
    async fn id(&self) -> &ID {
        &self.id
    }

    /// Waits at the gate, then answers the bearer this fetch carried.
    async fn token(&self, ctx: &Context<'_>) -> String {
        ctx.data_unchecked::<Gate>().passed().await;
        ctx.data_unchecked::<Bearer>().0.clone()
    }
}

struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ReviewsUser {
        ReviewsUser { id }
    }
}

/// Serves `schema` as subgraph `name`, counting the requests it receives
/// and handing each one's bearer to its resolvers.
async fn serve<Q, M>(
    name: &str,
    schema: Schema<Q, M, EmptySubscription>,
) -> (Served, Arc<AtomicUsize>)
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
{
    let received = Arc::new(AtomicUsize::new(0));
    let counted = received.clone();
    let sdl = testing::federation_sdl(&schema);
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            counted.fetch_add(1, SeqCst);
            let schema = schema.clone();
            async move {
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let request: async_graphql::Request = serde_json::from_slice(&body).unwrap();
                let response = schema.execute(request.data(Bearer(bearer))).await;
                axum::Json(serde_json::to_value(&response).unwrap())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let served = Served {
        name: name.to_owned(),
        url,
        sdl,
        seen: Default::default(),
        bodies: Default::default(),
    };
    (served, received)
}

/// The two subgraphs behind a gateway, the gate's key, and each subgraph's count.
struct Federation {
    gw: Arc<gateway::Gateway>,
    open: tokio::sync::watch::Sender<bool>,
    accounts: Arc<AtomicUsize>,
    reviews: Arc<AtomicUsize>,
}

async fn federation() -> Federation {
    federation_with(false).await
}

/// The same, the gateway sharing identical client queries' answers when `requests`.
async fn federation_with(requests: bool) -> Federation {
    let (open, gate) = tokio::sync::watch::channel(false);
    let gate = Gate(gate);
    let (accounts_sg, accounts) = serve(
        "accounts",
        Schema::build(AccountsQuery, AccountsMutation, EmptySubscription)
            .data(gate.clone())
            .enable_federation()
            .finish(),
    )
    .await;
    let (reviews_sg, reviews) = serve(
        "reviews",
        Schema::build(
            ReviewsQuery,
            async_graphql::EmptyMutation,
            EmptySubscription,
        )
        .data(gate)
        .enable_federation()
        .finish(),
    )
    .await;
    let gw = Arc::new(
        gateway::Gateway::new(
            &support::supergraph(&[&accounts_sg, &reviews_sg]),
            None,
            &gateway::GatewayOptions {
                introspection: true,
                metrics_on_api: true,
                deduplicate_requests: requests,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    Federation {
        gw,
        open,
        accounts,
        reviews,
    }
}

/// `grocery_gateway_subgraph_fetches_deduplicated_total` of `subgraph` (0 before the first).
async fn deduplicated(gw: &Arc<gateway::Gateway>, subgraph: &str) -> usize {
    metric(
        gw,
        &format!("grocery_gateway_subgraph_fetches_deduplicated_total{{subgraph=\"{subgraph}\"}} "),
    )
    .await
}

/// The value of the `/metrics` line starting with `prefix` (0 when absent).
async fn metric(gw: &Arc<gateway::Gateway>, prefix: &str) -> usize {
    use tower::ServiceExt;
    let response = gateway::router(gw.clone())
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(prefix)?.parse().ok())
        .unwrap_or(0)
}

const CLIENTS: usize = 8;
const ME: &str = "{ me { id name token } }";

/// Starts `CLIENTS` requests posting `query`, the i-th with `bearer(i)`.
fn clients(
    gw: &Arc<gateway::Gateway>,
    query: &'static str,
    bearer: fn(usize) -> &'static str,
) -> Vec<tokio::task::JoinHandle<Value>> {
    (0..CLIENTS)
        .map(|i| {
            let gw = gw.clone();
            tokio::spawn(async move {
                let authorization = bearer(i);
                support::post(&gw, query, json!({}), &[("authorization", authorization)])
                    .await
                    .0
            })
        })
        .collect()
}

async fn answers(clients: Vec<tokio::task::JoinHandle<Value>>) -> Vec<Value> {
    let mut answers = Vec::new();
    for client in clients {
        answers.push(client.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_queries_in_flight_cost_the_subgraph_one_request_and_are_counted() {
    let f = federation().await;
    let running = clients(&f.gw, ME, |_| "Bearer a");
    // Every client's entity fetch is either at the subgraph or joined one there.
    testing::wait_until("every reviews fetch sent or joined", async || {
        f.reviews.load(SeqCst) + deduplicated(&f.gw, "reviews").await == CLIENTS
    })
    .await;
    f.open.send(true).unwrap();
    let answers = answers(running).await;
    for answer in &answers {
        assert_eq!(
            answer,
            &json!({ "data": { "me": { "id": "u1", "name": "Ada", "token": "Bearer a" } } })
        );
    }
    assert_eq!(
        f.reviews.load(SeqCst),
        1,
        "the gate held the first one in flight"
    );
    assert_eq!(deduplicated(&f.gw, "reviews").await, CLIENTS - 1);
    // The root fetches answered at once: however many overlapped, the
    // counter is exactly what was not sent.
    assert_eq!(
        f.accounts.load(SeqCst) + deduplicated(&f.gw, "accounts").await,
        CLIENTS
    );
}

/// Two callers taking turns: even clients are `a`, odd ones `b`.
fn alternating_bearer(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "Bearer a"
    } else {
        "Bearer b"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetches_carrying_different_bearers_are_never_merged() {
    let f = federation().await;
    let running = clients(&f.gw, ME, alternating_bearer);
    testing::wait_until("every reviews fetch sent or joined", async || {
        f.reviews.load(SeqCst) + deduplicated(&f.gw, "reviews").await == CLIENTS
    })
    .await;
    f.open.send(true).unwrap();
    let answers = answers(running).await;
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer["data"]["me"]["token"],
            alternating_bearer(i),
            "client {i}"
        );
    }
    assert_eq!(f.reviews.load(SeqCst), 2, "one per bearer");
    assert_eq!(deduplicated(&f.gw, "reviews").await, CLIENTS - 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_mutations_are_never_merged() {
    let f = federation().await;
    let running = clients(&f.gw, "mutation { bump }", |_| "Bearer a");
    // All of them reach the subgraph while the first is still held there.
    testing::wait_until("every mutation at the subgraph", async || {
        f.accounts.load(SeqCst) == CLIENTS
    })
    .await;
    f.open.send(true).unwrap();
    for answer in answers(running).await {
        assert_eq!(answer, json!({ "data": { "bump": 1 } }));
    }
    assert_eq!(f.accounts.load(SeqCst), CLIENTS);
    assert_eq!(deduplicated(&f.gw, "accounts").await, 0);
}

/// Client queries answered by an identical one in flight.
async fn requests_deduplicated(gw: &Arc<gateway::Gateway>) -> usize {
    metric(gw, "grocery_gateway_requests_deduplicated_total ").await
}

fn waiting(f: &Federation) -> usize {
    f.gw.pipeline.inbound.as_ref().expect("on").waiting()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_request_deduplication_identical_queries_in_flight_run_once() {
    let f = federation_with(true).await;
    let running = clients(&f.gw, ME, |_| "Bearer a");
    // One runs (its entity fetch held at the gate), the others wait for it.
    testing::wait_until("one run, the rest waiting", async || {
        f.reviews.load(SeqCst) == 1 && waiting(&f) == CLIENTS - 1
    })
    .await;
    f.open.send(true).unwrap();
    for answer in answers(running).await {
        assert_eq!(
            answer,
            json!({ "data": { "me": { "id": "u1", "name": "Ada", "token": "Bearer a" } } })
        );
    }
    assert_eq!((f.accounts.load(SeqCst), f.reviews.load(SeqCst)), (1, 1));
    assert_eq!(requests_deduplicated(&f.gw).await, CLIENTS - 1);
    assert_eq!(
        deduplicated(&f.gw, "reviews").await,
        0,
        "nothing left to merge below"
    );
    assert_eq!(waiting(&f), 0);
    // Once answered, the same query runs again.
    let again = tokio::spawn({
        let gw = f.gw.clone();
        async move {
            support::post(&gw, ME, json!({}), &[("authorization", "Bearer a")])
                .await
                .0
        }
    });
    assert_eq!(again.await.unwrap()["data"]["me"]["token"], "Bearer a");
    assert_eq!(f.reviews.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_request_deduplication_other_callers_and_mutations_run_on_their_own() {
    let f = federation_with(true).await;
    let running = clients(&f.gw, ME, alternating_bearer);
    testing::wait_until("one run per bearer, the rest waiting", async || {
        f.reviews.load(SeqCst) == 2 && waiting(&f) == CLIENTS - 2
    })
    .await;
    let mutations = clients(&f.gw, "mutation { bump }", |_| "Bearer a");
    testing::wait_until("every mutation at the subgraph", async || {
        f.accounts.load(SeqCst) == 2 + CLIENTS
    })
    .await;
    f.open.send(true).unwrap();
    for (i, answer) in answers(running).await.iter().enumerate() {
        assert_eq!(
            answer["data"]["me"]["token"],
            alternating_bearer(i),
            "client {i}"
        );
    }
    for answer in answers(mutations).await {
        assert_eq!(answer, json!({ "data": { "bump": 1 } }));
    }
    assert_eq!(requests_deduplicated(&f.gw).await, CLIENTS - 2);
}
