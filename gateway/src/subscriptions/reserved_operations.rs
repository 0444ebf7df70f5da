//! Operations on a reserved SSE stream (single-connection mode, see
//! [`crate::subscriptions::reservations`]): `POST /graphql` with the
//! stream's token and `extensions.operationId` starts one (202) whose
//! frames go to the stream as `next` `{"id", "payload"}` and `complete`
//! `{"id"}` events; `DELETE /graphql?operationId=` stops one (200). A
//! refusal by the pipeline is accepted and streamed as the operation's
//! errors; a request that is not an operation of the stream (no id, one
//! already running, bad JSON, an unknown token) is refused over HTTP.

use std::{net::IpAddr, sync::Arc};

use axum::{
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    pipeline::{GraphqlRequest, response::error_body},
    subscriptions::{
        fanout::operate,
        frame::Frame,
        registry::limit_error,
        reservations::{Reserved, bad_request, json_answer, not_found, query_param, token_of},
        sse,
        state::Subscriptions,
        websocket::carried_headers,
    },
};

/// The longest operation id accepted (graphql-sse's are UUIDs).
const MAX_OPERATION_ID: usize = 128;

/// `POST /graphql` with a token: an operation whose events go to the
/// reservation's stream.
pub async fn operation(
    subs: &Arc<Subscriptions>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    body: Bytes,
) -> Response {
    let token = match token_of(&headers, None) {
        Ok(token) => token,
        Err(why) => return bad_request(why),
    };
    let request: GraphqlRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(&format!("invalid JSON body: {e}")),
    };
    let id = match request
        .extensions
        .as_ref()
        .and_then(|e| e.get("operationId"))
    {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_OPERATION_ID => id.clone(),
        Some(_) => {
            return bad_request(&format!(
                "extensions.operationId must be a string of 1 to {MAX_OPERATION_ID} bytes"
            ));
        }
        None => {
            return bad_request(
                "an operation on a reserved event stream needs extensions.operationId",
            );
        }
    };
    let options = &subs.options;
    let Some(reserved) = subs
        .reservations
        .lock()
        .find(token, options.reservation_lapse)
    else {
        return not_found();
    };
    let Some(sender) = reserved.sender(options.buffer) else {
        return not_found();
    };
    let mut state = reserved.state();
    if state.operations.contains_key(&id) {
        drop(state);
        return json_answer(
            StatusCode::CONFLICT,
            error_body(
                &format!("operation {id:?} is running on this stream"),
                "CONFLICT",
            ),
        );
    }
    let events = Events {
        id: id.clone(),
        sender,
        reserved: reserved.clone(),
    };
    if state.operations.len() >= options.per_connection {
        drop(state);
        let errors = limit_error(format!(
            "at most {} operations may run at once on one event stream",
            options.per_connection
        ));
        events.send(Frame::Error(errors));
        return StatusCode::ACCEPTED.into_response();
    }
    let generation = state.generation;
    state.generation += 1;
    let headers = operation_headers(subs, &headers, peer);
    let (task_subs, task_reserved, task_id) = (subs.clone(), reserved.clone(), id.clone());
    let task = tokio::spawn(async move {
        {
            let mut emit = |frame| events.send(frame);
            operate(&task_subs, headers, peer, request, None, &mut emit).await;
        }
        let mut state = task_reserved.state();
        if state
            .operations
            .get(&task_id)
            .is_some_and(|(g, _)| *g == generation)
        {
            state.operations.remove(&task_id);
        }
    });
    state
        .operations
        .insert(id, (generation, task.abort_handle()));
    drop(state);
    StatusCode::ACCEPTED.into_response()
}

/// Where one operation's frames go: its reservation's stream, tagged with its id.
struct Events {
    id: String,
    sender: mpsc::Sender<Bytes>,
    reserved: Arc<Reserved>,
}

impl Events {
    /// Sends `frame`'s events; `false` once the stream is gone. A full
    /// buffer is a client that does not read: its stream ends.
    fn send(&self, frame: Frame) -> bool {
        let id = Value::String(self.id.clone());
        let events = match frame {
            Frame::Next(body) => vec![next(&id, &body)],
            Frame::Error(errors) => vec![
                next(&id, json!({ "errors": errors }).to_string().as_bytes()),
                complete(&id),
            ],
            Frame::Complete => vec![complete(&id)],
        };
        for event in events {
            match self.sender.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("an SSE client did not read its events; ending its stream");
                    self.reserved.end();
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }
}

fn next(id: &Value, payload: &[u8]) -> Bytes {
    let mut data = Vec::with_capacity(payload.len() + 48);
    data.extend_from_slice(b"{\"id\":");
    data.extend_from_slice(id.to_string().as_bytes());
    data.extend_from_slice(b",\"payload\":");
    data.extend_from_slice(payload);
    data.push(b'}');
    sse::event("next", &data)
}

fn complete(id: &Value) -> Bytes {
    sse::event("complete", json!({ "id": id }).to_string().as_bytes())
}

/// `DELETE /graphql?operationId=` with a token: stops the operation.
pub fn stop(subs: &Arc<Subscriptions>, headers: &HeaderMap, query: Option<&str>) -> Response {
    let token = match token_of(headers, query) {
        Ok(token) => token,
        Err(why) => return bad_request(why),
    };
    let Some(id) = query_param(query, "operationId").filter(|id| !id.is_empty()) else {
        return bad_request("DELETE needs the operation's id: ?operationId=");
    };
    let Some(reserved) = subs
        .reservations
        .lock()
        .find(token, subs.options.reservation_lapse)
    else {
        return not_found();
    };
    if let Some((_, task)) = reserved.state().operations.remove(id.as_ref()) {
        task.abort();
    }
    StatusCode::OK.into_response()
}

/// The headers an operation runs with, copied out of the request (see
/// [`carried_headers`]), with the client's address as the gateway judged
/// it, never as the client wrote it.
fn operation_headers(subs: &Subscriptions, headers: &HeaderMap, peer: Option<IpAddr>) -> HeaderMap {
    let mut carried = carried_headers(headers);
    let client = subs.pipeline.limiter.client_ip(headers, peer);
    if let Some(ip) = client.and_then(|ip| HeaderValue::try_from(ip.to_string()).ok()) {
        carried.insert(HeaderName::from_static("x-forwarded-for"), ip);
    }
    carried
}
