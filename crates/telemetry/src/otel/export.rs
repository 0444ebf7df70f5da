//! The exporter behind an enabled [`Tracer`]: finished spans wait in a
//! bounded queue (a full queue drops and counts them, it never blocks a
//! request), and one background tokio task sends them in batches of up to
//! [`MAX_BATCH`] at least every [`SCHEDULE_DELAY`], as OTLP over gRPC
//! (tonic) or HTTP/protobuf (hyper). [`Tracer::shutdown`] sends what is left.

use std::{
    sync::{Arc, Mutex, atomic::AtomicU64, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use prost::Message;
use tokio::sync::{Notify, mpsc};

use super::{
    config::{Config, Export, Protocol, Sampler},
    proto,
    span::{Finished, Tracer, Value},
};

/// Spans waiting for export at most; more are dropped and counted.
pub const QUEUE: usize = 8192;
/// Spans per export at most.
pub const MAX_BATCH: usize = 512;
/// How long a finished span waits for its batch at most.
pub const SCHEDULE_DELAY: Duration = Duration::from_secs(1);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the spans of one enabled tracer share.
pub(super) struct Shared {
    pub(super) service: String,
    pub(super) sampler: Sampler,
    pub(super) queue: mpsc::Sender<Finished>,
    /// Spans dropped because the queue was full.
    pub(super) dropped: AtomicU64,
    stop: Notify,
    /// Rung when a batch is waiting, so the task wakes per batch, not per span.
    pub(super) full: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Tracer {
    /// A tracer for `config`: off without an export, else exporting from a
    /// task spawned on the current tokio runtime.
    pub fn start(config: &Config) -> Self {
        let Some(export) = &config.export else {
            return Self::default();
        };
        let (queue, spans) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            service: config.service.clone(),
            sampler: config.sampler,
            queue,
            dropped: AtomicU64::new(0),
            stop: Notify::new(),
            full: Notify::new(),
            task: Mutex::new(None),
        });
        let sender = Sender::new(export);
        let task = tokio::spawn(run(
            Arc::downgrade(&shared),
            spans,
            sender,
            config.service.clone(),
        ));
        if let Ok(mut slot) = shared.task.lock() {
            *slot = Some(task);
        }
        tracing::info!(
            service = %config.service,
            endpoint = %export.endpoint,
            protocol = ?export.protocol,
            "exporting traces"
        );
        Self(Some(shared))
    }

    /// Sends every span finished so far and stops the exporter; spans
    /// finished later are dropped.
    pub async fn shutdown(&self) {
        let Some(shared) = &self.0 else { return };
        let task = shared.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            shared.stop.notify_one();
            let _ = task.await;
        }
    }

    /// Spans dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }
}

async fn run(
    shared: std::sync::Weak<Shared>,
    mut spans: mpsc::Receiver<Finished>,
    sender: Sender,
    service: String,
) {
    let resource = proto::Resource {
        attributes: vec![
            key_value("service.name", Value::Text(service.into())),
            key_value("telemetry.sdk.name", Value::Text("grocery".into())),
            key_value("telemetry.sdk.language", Value::Text("rust".into())),
        ],
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(SCHEDULE_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Held weakly between waits: a tracer dropped without a shutdown ends
    // its task at the next tick.
    while let Some(held) = shared.upgrade() {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = held.full.notified() => false,
            () = held.stop.notified() => true,
        };
        drop(held);
        while let Ok(span) = spans.try_recv() {
            batch.push(span);
            if batch.len() == MAX_BATCH {
                sender.send(&resource, &mut batch).await;
            }
        }
        sender.send(&resource, &mut batch).await;
        if stopping {
            break;
        }
    }
}

/// An OTLP transport with its endpoint.
enum Sender {
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
    Http {
        client: Box<HttpClient>,
        endpoint: Uri,
    },
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl Sender {
    fn new(export: &Export) -> Self {
        match export.protocol {
            Protocol::Grpc => {
                // Connects on first use and again after a failure.
                let channel = tonic::transport::Endpoint::from(export.endpoint.clone())
                    .timeout(EXPORT_TIMEOUT)
                    .connect_lazy();
                Sender::Grpc(tonic::client::Grpc::new(channel))
            }
            Protocol::HttpProtobuf => Sender::Http {
                client: Box::new(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build_http(),
                ),
                endpoint: export.endpoint.clone(),
            },
        }
    }

    /// Sends `batch` (emptying it); a failure is logged and the spans are lost.
    async fn send(&self, resource: &proto::Resource, batch: &mut Vec<Finished>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len();
        let request = encode(resource, batch.drain(..));
        let sent = tokio::time::timeout(EXPORT_TIMEOUT, self.export(request)).await;
        let failure = match sent {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(spans = count, error = %failure, "trace export failed");
    }

    async fn export(&self, request: proto::ExportTraceServiceRequest) -> Result<(), String> {
        match self {
            Sender::Grpc(grpc) => {
                let mut grpc = grpc.clone();
                grpc.ready().await.map_err(|e| e.to_string())?;
                let _: tonic::Response<proto::ExportTraceServiceResponse> = grpc
                    .unary(
                        tonic::Request::new(request),
                        hyper::http::uri::PathAndQuery::from_static(EXPORT_PATH),
                        tonic_prost::ProstCodec::default(),
                    )
                    .await
                    .map_err(|status| status.to_string())?;
                Ok(())
            }
            Sender::Http { client, endpoint } => {
                let body = Full::new(Bytes::from(request.encode_to_vec()));
                let http = hyper::Request::post(endpoint.clone())
                    .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(body)
                    .map_err(|e| e.to_string())?;
                let response = client.request(http).await.map_err(|e| e.to_string())?;
                let status = response.status();
                // Read the answer whole so the connection is kept for the next batch.
                let _ = response.into_body().collect().await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("collector answered {status}"))
                }
            }
        }
    }
}

/// The export request of `spans`, all of one service.
fn encode(
    resource: &proto::Resource,
    spans: impl Iterator<Item = Finished>,
) -> proto::ExportTraceServiceRequest {
    let spans = spans.map(to_proto).collect();
    proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![proto::ScopeSpans {
                scope: Some(proto::InstrumentationScope {
                    name: "grocery".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                }),
                spans,
            }],
        }],
    }
}

fn to_proto(span: Finished) -> proto::Span {
    let Finished {
        context,
        recording,
        end_unix_nanos,
    } = span;
    let recording = *recording;
    proto::Span {
        trace_id: context.trace_id.to_vec(),
        span_id: context.span_id.to_vec(),
        parent_span_id: recording.parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: recording.name.into_owned(),
        kind: recording.kind as i32,
        start_time_unix_nano: recording.start_unix_nanos,
        end_time_unix_nano: end_unix_nanos,
        attributes: recording
            .attributes
            .into_iter()
            .map(|(key, value)| key_value(key, value))
            .collect(),
        status: recording
            .error
            .map(|message| proto::Status { message, code: 2 }),
        flags: u32::from(context.sampled),
    }
}

fn key_value(key: &str, value: Value) -> proto::KeyValue {
    use proto::any_value::Value as V;
    let value = match value {
        Value::Text(text) => V::StringValue(text.into_owned()),
        Value::Int(i) => V::IntValue(i),
        Value::Bool(b) => V::BoolValue(b),
    };
    proto::KeyValue {
        key: key.to_owned(),
        value: Some(proto::AnyValue { value: Some(value) }),
    }
}
