//! Subscriptions open on subgraphs, shared: clients that send the same
//! operation with the same variables and the same token follow one upstream
//! subscription, and each event runs the rest of the plan (the entity
//! fetches for fields other subgraphs own) once for all of them.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value, json};

use crate::{
    execution::{self, Execution},
    metrics::Outcome,
    pipeline::{self, GraphqlRequest, Ready, Report},
    subscriptions::{
        frame::Frame,
        registry::{Shared, Slot, Upstreams, limit_error},
        state::Subscriptions,
        ws_client::{self, Upstream},
    },
};

/// A client's place on a shared upstream subscription.
struct Member {
    upstreams: Arc<Upstreams>,
    /// Shared with the map entry: it holds the operation and the token, so
    /// ten thousand members must not hold ten thousand copies.
    key: Arc<str>,
    shared: Arc<Shared>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut upstreams = self.upstreams.lock();
        if self.shared.members.fetch_sub(1, Ordering::AcqRel) == 1 {
            if upstreams
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.shared))
            {
                upstreams.remove(&self.key);
            }
            if let Some(task) = self
                .shared
                .task
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                task.abort();
            }
        }
    }
}

/// Runs one operation a client sent over a connection it keeps (a
/// WebSocket, an SSE reservation) from its request: prepared like any
/// request with `headers`, then refused (an `Error` frame) or run by
/// [`pump`]. It holds `slot` while it runs; without one, a subscription
/// takes one of its caller's (`SUBSCRIPTION_LIMIT` when none is left).
/// Queries, mutations and refusals count as requests in the metrics; a
/// subscription's lifetime is not a request latency.
pub(crate) async fn operate(
    subs: &Arc<Subscriptions>,
    headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
    request: GraphqlRequest,
    slot: Option<Slot>,
    emit: &mut (dyn FnMut(Frame) -> bool + Send),
) {
    let started = std::time::Instant::now();
    let mut report = Report::new(request.operation_name.clone());
    let mut counted = true;
    // Boxed: its state is freed once the operation runs, instead of sizing
    // the task (alive as long as the subscription) for good.
    let prepared = Box::pin(pipeline::prepare(
        &subs.pipeline,
        &headers,
        peer,
        request,
        false,
        &mut report,
    ))
    .await;
    match prepared {
        Err(refusal) => {
            let errors = match refusal.capped(subs.pipeline.options.max_errors).errors {
                Value::Object(mut body) => body.remove("errors").unwrap_or(Value::Null),
                other => other,
            };
            emit(Frame::Error(errors));
        }
        Ok(ready) => {
            let per_user = subs.options.per_user;
            let slot = match slot {
                Some(slot) => Some(slot),
                None if ready.is_subscription() => subs
                    .registry
                    .take(ready.claims.as_ref().map(|c| c.sub), per_user),
                None => None,
            };
            if slot.is_none() && ready.is_subscription() {
                emit(Frame::Error(limit_error(format!(
                    "at most {per_user} subscriptions may be open per user"
                ))));
            } else {
                let _slot = slot;
                report.outcome = Outcome::Ok;
                counted = !ready.is_subscription();
                pump(subs, ready, headers, emit).await;
            }
        }
    }
    if counted {
        report.finish(&subs.pipeline, started.elapsed()).await;
    }
}

/// Runs one client operation and hands each frame to `emit`, which answers
/// `false` once the client is gone. A query or mutation gives one result; a
/// subscription one per event until the subgraph completes or is lost.
pub(crate) async fn pump(
    subs: &Arc<Subscriptions>,
    ready: Ready,
    headers: HeaderMap,
    emit: &mut (dyn FnMut(Frame) -> bool + Send),
) {
    if !ready.is_subscription() {
        let caller = ready.caller();
        let answered = pipeline::answer(
            &ready.loaded,
            &ready.prepared,
            &ready.variables,
            &headers,
            caller.as_deref(),
        )
        .await;
        if emit(Frame::Next(answered.body.into())) {
            emit(Frame::Complete);
        }
        return;
    }
    // The caller's headers (and the plan) live on only in the upstream
    // subscription, not in every member.
    let (member, mut events) = join(subs, ready, headers);
    loop {
        match events.recv().await {
            Ok(frame) => {
                let last = !matches!(frame, Frame::Next(_));
                if !emit(frame) || last {
                    break;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                // Events were lost for this client: it does not keep up.
                tracing::warn!(missed, "a subscriber fell behind; ending its subscription");
                let body = json!({ "errors": [{
                    "message": format!("the client fell {missed} events behind"),
                    "extensions": { "code": "SUBSCRIPTION_LAGGED" },
                }] });
                if emit(Frame::Next(body.to_string().into())) {
                    emit(Frame::Complete);
                }
                break;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                emit(Frame::Complete);
                break;
            }
        }
    }
    drop(member);
}

/// Follows the upstream subscription of `ready` for this caller, opening
/// it if no identical one is open.
fn join(
    subs: &Arc<Subscriptions>,
    ready: Ready,
    headers: HeaderMap,
) -> (Member, tokio::sync::broadcast::Receiver<Frame>) {
    let registry = subs.upstreams.clone();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        ready.prepared.operation,
        Value::Object(ready.variables.clone()),
        token,
        Arc::as_ptr(&ready.loaded) as usize,
    );
    let mut upstreams = registry.lock();
    if let Some((key, shared)) = upstreams.get_key_value(key.as_str()) {
        shared.members.fetch_add(1, Ordering::AcqRel);
        let events = shared.events.subscribe();
        let (key, shared) = (key.clone(), shared.clone());
        drop(upstreams);
        return (
            Member {
                upstreams: registry,
                key,
                shared,
            },
            events,
        );
    }
    let (tx, events) = tokio::sync::broadcast::channel(subs.options.buffer);
    let shared = Arc::new(Shared {
        events: tx.clone(),
        members: AtomicUsize::new(1),
        task: Mutex::new(None),
    });
    let key: Arc<str> = key.into();
    upstreams.insert(key.clone(), shared.clone());
    drop(upstreams);
    let (subs2, headers2, registry2, key2, shared2) = (
        subs.clone(),
        headers,
        registry.clone(),
        key.clone(),
        shared.clone(),
    );
    let task = tokio::spawn(async move {
        let mut emit = |frame: Frame| {
            // No receiver left: the last member is leaving and aborts this task.
            tx.send(frame).is_ok()
        };
        source(&subs2, ready, &headers2, &mut emit).await;
        // Ended by the subgraph: identical subscriptions from now on open a new one.
        let mut upstreams = registry2.lock();
        if upstreams
            .get(&key2)
            .is_some_and(|s| Arc::ptr_eq(s, &shared2))
        {
            upstreams.remove(&key2);
        }
    });
    *shared.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    (
        Member {
            upstreams: registry,
            key,
            shared,
        },
        events,
    )
}

/// Subscribes on the subgraph that owns the subscription of `ready` and
/// emits every event completed with the rest of the plan, then how it ended.
async fn source(
    subs: &Subscriptions,
    ready: Ready,
    headers: &HeaderMap,
    emit: &mut (dyn FnMut(Frame) -> bool + Send),
) {
    let loaded = &ready.loaded;
    let Some(primary) = execution::subscription_primary(&ready.prepared.plan) else {
        emit(Frame::Error(json!([{
            "message": "the subscription has no subgraph to subscribe to",
            "extensions": { "code": "INTERNAL_SERVER_ERROR" },
        }])));
        return;
    };
    let service = primary.service_name.as_str();
    // Why is logged, not sent: it names addresses and transport errors.
    let unreachable = |why: String| {
        tracing::warn!(subgraph = service, %why, "a subscription's subgraph failed");
        json!([{
            "message": format!("the {service} subgraph cannot serve the subscription"),
            "extensions": { "code": "SUBREQUEST_HTTP_ERROR", "serviceName": service },
        }])
    };
    let Some(endpoint) = loaded.subgraphs.endpoint(service) else {
        emit(Frame::Error(unreachable("no URL".into())));
        return;
    };
    let variables: Map<String, Value> = primary
        .variable_usages
        .iter()
        .flatten()
        .filter_map(|name| ready.variables.get(name).map(|v| (name.clone(), v.clone())))
        .collect();
    let opened = ws_client::subscribe(
        endpoint.url(),
        endpoint.headers(),
        pipeline::bearer(headers),
        &primary.operation.document_str,
        variables,
        loaded.subgraphs.timeout(service),
    )
    .await;
    let mut source = match opened {
        Ok(source) => source.with_keepalive(subs.options.keepalive),
        Err(why) => {
            emit(Frame::Error(unreachable(why)));
            return;
        }
    };
    loop {
        match source.next().await {
            Upstream::Next(mut payload) => {
                let errors = match payload.get_mut("errors").map(Value::take) {
                    Some(Value::Array(errors)) => errors
                        .into_iter()
                        .map(|e| execution::with_service(e, service))
                        .collect(),
                    _ => Vec::new(),
                };
                let data = payload
                    .get_mut("data")
                    .map(|data| crate::value::Value::from(data.take()))
                    .unwrap_or_default();
                let event = Execution { data, errors };
                let result = execution::execute_event(
                    &ready.prepared.plan,
                    &loaded.subgraphs,
                    loaded.supergraph.shapes(),
                    &ready.variables,
                    headers,
                    event,
                )
                .await;
                let (body, _) =
                    pipeline::write_response(&result, &ready.prepared, loaded, &ready.variables);
                if !emit(Frame::Next(body.into())) {
                    source.close().await;
                    return;
                }
            }
            Upstream::Error(payload) => {
                let errors = match payload {
                    Value::Array(errors) => errors
                        .into_iter()
                        .map(|e| execution::with_service(e, service))
                        .collect(),
                    other => vec![execution::with_service(other, service)],
                };
                emit(Frame::Error(Value::Array(errors)));
                return;
            }
            Upstream::Complete => {
                emit(Frame::Complete);
                return;
            }
            Upstream::Lost(why) => {
                let body = json!({ "errors": unreachable(why) }).to_string();
                if emit(Frame::Next(body.into())) {
                    emit(Frame::Complete);
                }
                return;
            }
        }
    }
}
