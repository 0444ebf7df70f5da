//! Small in-repo subgraphs for gateway tests: async-graphql schemas served
//! over HTTP on 127.0.0.1, composed into a supergraph the way `grocery
//! compose` does, and the headers each received kept for inspection.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::{body::Bytes, http::HeaderMap};
use serde_json::Value;

/// A subgraph served for a test.
pub struct Served {
    pub name: String,
    pub url: String,
    pub sdl: String,
    /// Headers of every request received, oldest first.
    pub seen: Arc<Mutex<Vec<HeaderMap>>>,
    /// Bodies of every request received, oldest first.
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

impl Served {
    /// The bodies received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Forgets what was received so far (headers and bodies).
    pub fn forget(&self) {
        self.bodies.lock().unwrap().clear();
        self.seen.lock().unwrap().clear();
    }
}

/// A 127.0.0.1 URL nothing listens on: a subgraph that is down (the port was
/// free a moment ago, so connecting is refused at once).
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Serves `schema` as subgraph `name` on a free 127.0.0.1 port.
pub async fn serve<Q, M, S>(name: &str, schema: async_graphql::Schema<Q, M, S>) -> Served
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    serve_beside(name, schema, axum::Router::new()).await
}

/// [`serve`], with the routes of `beside` (a `/ready`, say) on the same port.
pub async fn serve_beside<Q, M, S>(
    name: &str,
    schema: async_graphql::Schema<Q, M, S>,
    beside: axum::Router,
) -> Served
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    let sdl = testing::federation_sdl(&schema);
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (headers_log, bodies_log) = (seen.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let schema = schema.clone();
            headers_log.lock().unwrap().push(headers);
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            bodies_log.lock().unwrap().push(body.clone());
            async move {
                let mut headers = HeaderMap::new();
                let request: async_graphql::Request = match serde_json::from_value(body) {
                    Ok(r) => r,
                    Err(e) => {
                        return (
                            headers,
                            axum::Json(
                                serde_json::json!({ "errors": [{ "message": e.to_string() }] }),
                            ),
                        );
                    }
                };
                let response = schema.execute(request).await;
                // As async-graphql-axum does: the fields' cache hints, for a clean answer.
                if response.is_ok()
                    && let Some(value) = response.cache_control.value()
                {
                    headers.insert("cache-control", value.parse().unwrap());
                }
                (
                    headers,
                    axum::Json(serde_json::to_value(&response).unwrap()),
                )
            }
        }),
    );
    let app = app.merge(beside);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        name: name.to_owned(),
        url,
        sdl,
        seen,
        bodies,
    }
}

/// The supergraph of `subgraphs`.
pub fn supergraph(subgraphs: &[&Served]) -> String {
    let sources: Vec<_> = subgraphs
        .iter()
        .map(|s| gateway::SubgraphSource {
            name: s.name.clone(),
            url: s.url.clone(),
            sdl: s.sdl.clone(),
        })
        .collect();
    gateway::compose(&sources).unwrap()
}

/// A gateway (no edge auth, introspection and `/metrics` on) over `sdl`.
pub fn gateway(sdl: &str) -> Arc<gateway::Gateway> {
    Arc::new(
        gateway::Gateway::new(
            sdl,
            None,
            &gateway::GatewayOptions {
                introspection: true,
                metrics_on_api: true,
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

/// POSTs `query` to the gateway's router with extra `headers`; the JSON body and the response headers.
pub async fn post(
    gw: &Arc<gateway::Gateway>,
    query: &str,
    variables: Value,
    headers: &[(&str, &str)],
) -> (Value, HeaderMap) {
    let (_, body, headers) = post_with_status(gw, query, variables, headers).await;
    (body, headers)
}

/// [`post`], with the HTTP status as well.
pub async fn post_with_status(
    gw: &Arc<gateway::Gateway>,
    query: &str,
    variables: Value,
    headers: &[(&str, &str)],
) -> (axum::http::StatusCode, Value, HeaderMap) {
    use tower::ServiceExt;
    let mut builder =
        axum::http::Request::post("/graphql").header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
    let response = gateway::router(gw.clone())
        .oneshot(builder.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), headers)
}

/// A subgraph running on its own runtime and thread, like a process of its
/// own: [`Process::kill`] drops every connection it has at once.
pub struct Process {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Stops the subgraph: its runtime is dropped with every socket it holds.
    pub fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Serves `schema` as subgraph `name` on a free 127.0.0.1 port, with
/// subscriptions over `graphql-transport-ws` on GET `/graphql`, in a process
/// of its own (see [`Process`]).
pub fn serve_with_subscriptions<Q, M, S>(
    name: &str,
    schema: async_graphql::Schema<Q, M, S>,
) -> (Served, Process)
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    let sdl = testing::federation_sdl(&schema);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let http = schema.clone();
        let app = axum::Router::new().route(
            "/graphql",
            axum::routing::post(move |body: Bytes| {
                let schema = http.clone();
                async move {
                    let request: async_graphql::Request = serde_json::from_slice(&body).unwrap();
                    axum::Json(serde_json::to_value(schema.execute(request).await).unwrap())
                }
            })
            .get_service(async_graphql_axum::GraphQLSubscription::new(schema)),
        );
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app).await;
        });
        let _ = stopped.recv();
        runtime.shutdown_background();
    });
    let served = Served {
        name: name.to_owned(),
        url,
        sdl,
        seen: Arc::default(),
        bodies: Arc::default(),
    };
    (
        served,
        Process {
            stop: Some(stop),
            thread: Some(thread),
        },
    )
}

/// Serves the gateway on a free 127.0.0.1 port as `grocery serve gateway`
/// does (serving threads, `POST /graphql` by the lane, the rest by hyper);
/// its base URL (`http://127.0.0.1:PORT`). Served until the test ends.
pub async fn listen(gw: Arc<gateway::Gateway>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = gateway::server::Serving {
        threads: 1,
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _stop = stop;
        gateway::server::serve(listener, gateway::edge(gw), serving, stopped).await
    });
    base
}
