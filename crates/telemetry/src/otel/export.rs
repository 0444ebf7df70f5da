//! The exporter behind an enabled [`Tracer`]: a finished span is encoded
//! (OTLP protobuf, [`encode`]) straight into its thread's open batch, a
//! batch of [`MAX_BATCH`] spans is handed to the exporter's queue of ready
//! batches, and one background tokio task sends them, and every batch
//! still open at least every [`SCHEDULE_DELAY`], as OTLP over gRPC (tonic)
//! or HTTP/protobuf (hyper). A full queue drops and counts spans, it never
//! blocks a request. [`Tracer::shutdown`] sends what is left.
//!
//! The open batches are one per thread (sharded by a per-thread index):
//! the gateway's serving threads each run their own runtime, so each lock
//! is taken by one thread but for the exporter's visit once a second; it
//! replaced a shared channel of span records (figures in [`encode`]'s doc).

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use tokio::sync::Notify;

use super::{
    config::{Config, Export, Protocol, Sampler},
    encode::{self, Frame, Head},
    proto,
    span::Tracer,
};

/// Spans waiting in ready batches at most; more are dropped and counted
/// (each thread's open batch holds up to [`MAX_BATCH`] more).
pub const QUEUE: usize = 8192;
/// Spans per export at most.
pub const MAX_BATCH: usize = 512;
/// How long a finished span waits for its batch at most.
pub const SCHEDULE_DELAY: Duration = Duration::from_secs(1);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Open batches: threads beyond this many share them.
const SHARDS: usize = 16;

/// Encoded spans, the `spans` of one export.
#[derive(Default)]
struct Batch {
    spans: Vec<u8>,
    count: usize,
}

/// What the spans of one enabled tracer share.
pub(super) struct Shared {
    pub(super) service: String,
    pub(super) sampler: Sampler,
    /// Each thread's batch being filled.
    open: [Mutex<Batch>; SHARDS],
    /// Full batches waiting for the exporter, at most `QUEUE / MAX_BATCH`.
    ready: Mutex<Vec<Batch>>,
    /// Buffers of sent batches, for the next ones.
    spare: Mutex<Vec<Vec<u8>>>,
    /// Spans dropped because the queue was full.
    dropped: AtomicU64,
    stop: Notify,
    /// Rung when a batch is ready, so the task wakes per batch, not per span.
    full: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This thread's open batch: threads take indexes in turn as they first finish a span.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

impl Shared {
    /// Adds a finished span to this thread's batch (or counts it dropped).
    pub(super) fn finish(&self, head: &Head<'_>, fields: &[u8]) {
        let mut open = lock(&self.open[shard()]);
        if open.count >= MAX_BATCH && !self.hand_over(&mut open) {
            // The exporter is behind (the collector is slow or down, or it
            // was shut down): the request never waits for tracing.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        encode::span(&mut open.spans, head, fields);
        open.count += 1;
        if open.count == MAX_BATCH {
            self.hand_over(&mut open);
        }
    }

    /// Moves a full batch to the ready ones, unless they are full.
    fn hand_over(&self, open: &mut Batch) -> bool {
        let mut ready = lock(&self.ready);
        if ready.len() >= QUEUE / MAX_BATCH {
            return false;
        }
        let spans = lock(&self.spare).pop().unwrap_or_default();
        ready.push(std::mem::replace(open, Batch { spans, count: 0 }));
        drop(ready);
        self.full.notify_one();
        true
    }

    /// The ready batches, and with `all` the open ones too.
    fn take(&self, all: bool) -> Vec<Batch> {
        let mut batches = std::mem::take(&mut *lock(&self.ready));
        if all {
            for open in &self.open {
                let mut open = lock(open);
                if open.count > 0 {
                    batches.push(std::mem::take(&mut *open));
                }
            }
        }
        batches
    }
}

impl Tracer {
    /// A tracer for `config`: off without an export, else exporting from a
    /// task spawned on the current tokio runtime.
    pub fn start(config: &Config) -> Self {
        let Some(export) = &config.export else {
            return Self::default();
        };
        let shared = Arc::new(Shared {
            service: config.service.clone(),
            sampler: config.sampler,
            open: Default::default(),
            ready: Mutex::default(),
            spare: Mutex::default(),
            dropped: AtomicU64::new(0),
            stop: Notify::new(),
            full: Notify::new(),
            task: Mutex::new(None),
        });
        let sender = Sender::new(export);
        let task = tokio::spawn(run(
            Arc::downgrade(&shared),
            sender,
            Frame::new(&config.service),
        ));
        *lock(&shared.task) = Some(task);
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
        let task = lock(&shared.task).take();
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

async fn run(shared: std::sync::Weak<Shared>, sender: Sender, frame: Frame) {
    let mut tick = tokio::time::interval(SCHEDULE_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Held weakly between waits: a tracer dropped without a shutdown ends
    // its task at the next tick.
    while let Some(held) = shared.upgrade() {
        let (all, stopping) = tokio::select! {
            _ = tick.tick() => (true, false),
            () = held.full.notified() => (false, false),
            () = held.stop.notified() => (true, true),
        };
        let batches = held.take(all);
        drop(held);
        for batch in batches {
            sender.send(&frame, &batch).await;
            if let Some(held) = shared.upgrade() {
                let mut spare = lock(&held.spare);
                if spare.len() < SHARDS {
                    let mut spans = batch.spans;
                    spans.clear();
                    spare.push(spans);
                }
            }
        }
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

    /// Sends `batch`; a failure is logged and the spans are lost.
    async fn send(&self, frame: &Frame, batch: &Batch) {
        let count = batch.count;
        let request = Bytes::from(frame.request(&batch.spans));
        let sent = tokio::time::timeout(EXPORT_TIMEOUT, self.export(request)).await;
        let failure = match sent {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(spans = count, error = %failure, "trace export failed");
    }

    async fn export(&self, request: Bytes) -> Result<(), String> {
        match self {
            Sender::Grpc(grpc) => {
                let mut grpc = grpc.clone();
                grpc.ready().await.map_err(|e| e.to_string())?;
                let _: tonic::Response<proto::ExportTraceServiceResponse> = grpc
                    .unary(
                        tonic::Request::new(Encoded(request)),
                        hyper::http::uri::PathAndQuery::from_static(EXPORT_PATH),
                        tonic_prost::ProstCodec::default(),
                    )
                    .await
                    .map_err(|status| status.to_string())?;
                Ok(())
            }
            Sender::Http { client, endpoint } => {
                let body = Full::new(request);
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

/// An `ExportTraceServiceRequest` already encoded ([`Frame::request`]),
/// for tonic's prost codec to write as it is.
#[derive(Debug, Default)]
struct Encoded(Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever sent, never read.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}
