//! An OTLP trace receiver for tests and benches: a tonic `TraceService` and
//! an HTTP `POST /v1/traces`, both on 127.0.0.1 free ports, decoding what
//! arrives and keeping every span with its service's name (or, as a bench's
//! sink, counting and dropping them). No collector binary needed.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use prost::Message;

use super::proto::{ExportTraceServiceRequest, ExportTraceServiceResponse, Span};

/// A span as a receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `service.name` of its resource.
    pub service: String,
    pub span: Span,
}

#[derive(Default)]
struct Store {
    keep: bool,
    spans: Mutex<Vec<Received>>,
    counted: std::sync::atomic::AtomicUsize,
}

impl Store {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut count = 0;
        let mut kept = Vec::new();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.text())
                .unwrap_or_default()
                .to_owned();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                count += 1;
                if self.keep {
                    kept.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        self.counted
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut spans) = self.spans.lock() {
            spans.extend(kept);
        }
    }
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// Where OTLP/gRPC is served (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).
    pub grpc: SocketAddr,
    /// Where OTLP/HTTP is served (`POST /v1/traces`).
    pub http: SocketAddr,
    store: Arc<Store>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Receiver {
    /// A receiver that keeps every span.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_keeping(true).await
    }

    /// A receiver that counts spans and drops them (a bench's sink).
    pub async fn sink() -> std::io::Result<Self> {
        Self::start_keeping(false).await
    }

    async fn start_keeping(keep: bool) -> std::io::Result<Self> {
        let store = Arc::new(Store {
            keep,
            ..Store::default()
        });
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (grpc_addr, http_addr) = (grpc.local_addr()?, http.local_addr()?);
        let service = TraceService(store.clone());
        let grpc_task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc))
                .await;
        });
        let app = Router::new()
            .route("/v1/traces", post(http_export))
            .with_state(store.clone());
        let http_task = tokio::spawn(async move {
            let _ = axum::serve(http, app).await;
        });
        Ok(Self {
            grpc: grpc_addr,
            http: http_addr,
            store,
            tasks: vec![grpc_task, http_task],
        })
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<Received> {
        self.store
            .spans
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// How many spans arrived, kept or not.
    pub fn count(&self) -> usize {
        self.store
            .counted
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn http_export(State(store): State<Arc<Store>>, body: Bytes) -> axum::http::StatusCode {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            store.take(request);
            axum::http::StatusCode::OK
        }
        Err(_) => axum::http::StatusCode::BAD_REQUEST,
    }
}

/// `opentelemetry.proto.collector.trace.v1.TraceService`, by hand: its one
/// unary method needs no generated code.
#[derive(Clone)]
struct TraceService(Arc<Store>);

impl tonic::server::NamedService for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::UnaryService<ExportTraceServiceRequest> for TraceService {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        self.0.take(request.into_inner());
        std::future::ready(Ok(tonic::Response::new(
            ExportTraceServiceResponse::default(),
        )))
    }
}

impl tonic::codegen::Service<axum::http::Request<tonic::body::Body>> for TraceService {
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<tonic::body::Body>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            if request.uri().path() != "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            {
                return Ok(tonic::Status::unimplemented("only Export").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(service, request).await)
        })
    }
}
