//! The exporter against the in-crate receiver, over both transports.

use super::{receiver::Receiver, *};

fn config(receiver: &Receiver, protocol: Protocol, sampler: Sampler) -> Config {
    let endpoint = match protocol {
        Protocol::Grpc => format!("http://{}", receiver.grpc),
        Protocol::HttpProtobuf => format!("http://{}/v1/traces", receiver.http),
    };
    Config {
        export: Some(Export {
            protocol,
            endpoint: endpoint.parse().unwrap(),
        }),
        sampler,
        service: "grocery-test".into(),
    }
}

async fn parent_and_child_arrive_over(protocol: Protocol) {
    let receiver = Receiver::start().await.unwrap();
    let tracer = Tracer::start(&config(
        &receiver,
        protocol,
        Sampler::ParentBased(Root::AlwaysOn),
    ));
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut parent = tracer.open("request", Kind::Server, Some(caller));
    parent.set("http.request.method", "POST");
    let mut child = tracer.child(parent.context(), "fetch", Kind::Client);
    child.set("http.response.status_code", 200u16);
    child.fail(|| "boom".into());
    let (parent_id, child_id) = (parent.context().unwrap(), child.context().unwrap());
    child.end();
    parent.end();
    tracer.shutdown().await;
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (fetch, request) = (&spans[0].span, &spans[1].span);
    assert!(spans.iter().all(|s| s.service == "grocery-test"));
    assert_eq!(request.name, "request");
    assert_eq!(request.kind, 2);
    assert_eq!(request.trace_id, parent_id.trace_id);
    assert_eq!(hex(&request.trace_id), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(hex(&request.parent_span_id), "b7ad6b7169203331");
    assert_eq!(request.span_id, parent_id.span_id);
    assert_eq!(
        request.attribute("http.request.method").unwrap().text(),
        Some("POST")
    );
    assert_eq!(fetch.span_id, child_id.span_id);
    assert_eq!(fetch.parent_span_id, request.span_id);
    assert_eq!(fetch.trace_id, request.trace_id);
    assert_eq!(
        fetch.attribute("http.response.status_code").unwrap().int(),
        Some(200)
    );
    assert_eq!(
        fetch.status.as_ref().map(|s| (s.code, s.message.as_str())),
        Some((2, "boom"))
    );
    assert!(fetch.start_time_unix_nano <= fetch.end_time_unix_nano);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn spans_arrive_over_grpc() {
    parent_and_child_arrive_over(Protocol::Grpc).await;
}

#[tokio::test]
async fn spans_arrive_over_http_protobuf() {
    parent_and_child_arrive_over(Protocol::HttpProtobuf).await;
}

#[tokio::test]
async fn ratio_zero_records_nothing_and_passes_the_decision_on() {
    let receiver = Receiver::start().await.unwrap();
    let tracer = Tracer::start(&config(
        &receiver,
        Protocol::HttpProtobuf,
        Sampler::ParentBased(Root::TraceIdRatio(0.0)),
    ));
    let span = tracer.open("request", Kind::Server, None);
    assert!(!span.is_recording());
    let mut headers = axum::http::HeaderMap::new();
    span.propagate(&mut headers);
    let sent = headers[&crate::TRACEPARENT].to_str().unwrap().to_owned();
    assert!(sent.ends_with("-00"), "{sent}");
    let child = tracer.child_of_headers(&headers, "fetch", Kind::Client);
    assert!(!child.is_recording());
    drop((span, child));
    tracer.shutdown().await;
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn spans_of_many_threads_and_batches_all_arrive_once() {
    let receiver = Receiver::sink().await.unwrap();
    let tracer = Tracer::start(&config(
        &receiver,
        Protocol::Grpc,
        Sampler::ParentBased(Root::AlwaysOn),
    ));
    // More than a batch per thread: full batches go while others fill.
    let per_thread = MAX_BATCH + MAX_BATCH / 2;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let tracer = tracer.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let mut span = tracer.open("request", Kind::Server, None);
                    span.set("n", i as i64);
                    span.rename(format_args!("request {i}"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    tracer.shutdown().await;
    assert_eq!(tracer.dropped(), 0);
    assert_eq!(receiver.count(), 4 * per_thread);
}
