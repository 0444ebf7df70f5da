//! The two WebSocket subprotocols clients subscribe with, as messages in and
//! out; [`crate::subscriptions::websocket`] runs a connection the same way
//! for both (limits, auth at `connection_init`, keep-alive, fan-out), and
//! what differs between them is here.
//!
//! - `graphql-transport-ws` (the graphql-ws library's protocol): `subscribe`,
//!   `next`, `error`, `complete`, `ping`/`pong`; a violation closes the
//!   connection with the protocol's 44xx code.
//! - `graphql-ws` (Apollo's archived subscriptions-transport-ws, which older
//!   clients still speak): `start`, `data`, `error`, `complete`, `stop`,
//!   `connection_terminate`, keep-alive `ka`. Its reference server answers a
//!   message it cannot read with `connection_error` and one of an unknown
//!   type with `error`, and keeps the connection; it restarts an operation
//!   whose id is started again; a validation error arrives as `data` with
//!   `errors`, then `complete`. So does this one.

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::subscriptions::frame::Frame;

/// A subprotocol the gateway speaks to WebSocket clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subprotocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

/// What a client's message asks for.
pub enum Command {
    Init(Option<Value>),
    /// Start operation `id` with `payload` (a GraphQL request).
    Start {
        id: Option<String>,
        payload: Option<Value>,
    },
    /// Stop operation `id`.
    Stop(Option<String>),
    /// `graphql-transport-ws`'s ping: answered with a pong.
    Ping,
    /// Nothing to do (a pong).
    Nothing,
    /// `graphql-ws`'s `connection_terminate`: the client is done.
    Terminate,
    /// Not a message of the protocol: answered as it says.
    Fault(Fault),
}

/// A message the protocol does not allow.
pub enum Fault {
    /// Not JSON, or not a message.
    Unreadable(String),
    /// A binary message (both protocols are text).
    Binary,
    /// A type the protocol does not have.
    UnknownType { kind: String, id: Option<String> },
    /// An operation without an id.
    NoId,
    /// An operation started before `connection_init` was acknowledged.
    NotAcknowledged(String),
    /// An operation whose payload is not a GraphQL request.
    BadPayload { id: String, why: String },
}

/// How a connection answers a fault.
pub enum Reply {
    /// Closes the connection with this code and reason.
    Close(u16, String),
    /// Sends this message and carries on.
    Send(String),
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

impl Subprotocol {
    /// Both, the preferred first.
    pub const ALL: [Subprotocol; 2] = [Subprotocol::TransportWs, Subprotocol::Legacy];

    /// The name in `Sec-WebSocket-Protocol`.
    pub fn name(self) -> &'static str {
        match self {
            Self::TransportWs => crate::subscriptions::ws_client::PROTOCOL,
            Self::Legacy => "graphql-ws",
        }
    }

    /// The subprotocol to speak with a client that offers `headers`'
    /// `Sec-WebSocket-Protocol`: `graphql-transport-ws` when it is offered,
    /// else `graphql-ws`, else none.
    pub fn chosen(headers: &HeaderMap) -> Option<Self> {
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        Self::ALL.into_iter().find(|p| offered.contains(&p.name()))
    }

    /// What the client's text message asks for.
    pub fn read(self, text: &str) -> Command {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => return Command::Fault(Fault::Unreadable(e.to_string())),
        };
        let ClientMessage { kind, id, payload } = message;
        match (self, kind.as_str()) {
            (_, "connection_init") => Command::Init(payload),
            (Self::TransportWs, "subscribe") | (Self::Legacy, "start") => {
                Command::Start { id, payload }
            }
            (Self::TransportWs, "complete") | (Self::Legacy, "stop") => Command::Stop(id),
            (Self::TransportWs, "ping") => Command::Ping,
            (Self::TransportWs, "pong") => Command::Nothing,
            (Self::Legacy, "connection_terminate") => Command::Terminate,
            _ => Command::Fault(Fault::UnknownType { kind, id }),
        }
    }

    /// How the protocol answers `fault`.
    pub fn reply(self, fault: Fault) -> Reply {
        match self {
            Self::TransportWs => match fault {
                Fault::Unreadable(why) => {
                    Reply::Close(4400, format!("Invalid message received: {why}"))
                }
                Fault::Binary => Reply::Close(
                    4400,
                    "binary messages are not part of graphql-transport-ws".into(),
                ),
                Fault::UnknownType { kind, .. } => Reply::Close(
                    4400,
                    format!("Invalid message received: unknown type {kind:?}"),
                ),
                Fault::NoId => Reply::Close(
                    4400,
                    "Invalid message received: subscribe needs an id".into(),
                ),
                Fault::NotAcknowledged(_) => Reply::Close(4401, "Unauthorized".into()),
                Fault::BadPayload { why, .. } => {
                    Reply::Close(4400, format!("Invalid message received: {why}"))
                }
            },
            Self::Legacy => {
                let connection_error = |message: String| json!({ "type": "connection_error", "payload": error(&message, "BAD_REQUEST") });
                let message = match fault {
                    Fault::Unreadable(why) => {
                        connection_error(format!("the message is not one of graphql-ws: {why}"))
                    }
                    Fault::Binary => {
                        connection_error("binary messages are not part of graphql-ws".into())
                    }
                    Fault::NoId => connection_error("start needs an id".into()),
                    Fault::UnknownType { kind, id } => json!({
                        "id": id,
                        "type": "error",
                        "payload": error(&format!("unknown message type {kind:?}"), "BAD_REQUEST"),
                    }),
                    Fault::NotAcknowledged(id) => json!({
                        "id": id,
                        "type": "error",
                        "payload": error("send connection_init (and wait for connection_ack) before start", "BAD_REQUEST"),
                    }),
                    Fault::BadPayload { id, why } => json!({
                        "id": id,
                        "type": "error",
                        "payload": error(&format!("the payload is not a GraphQL request: {why}"), "BAD_REQUEST"),
                    }),
                };
                Reply::Send(message.to_string())
            }
        }
    }

    /// Whether starting an id that runs restarts it (`graphql-ws`'s
    /// reference server) rather than closing the connection with 4409.
    pub fn restarts_a_running_id(self) -> bool {
        self == Self::Legacy
    }

    /// What acknowledges `connection_init`.
    pub fn acknowledgement(self) -> &'static [&'static str] {
        match self {
            Self::TransportWs => &[r#"{"type":"connection_ack"}"#],
            // The first keep-alive right away: the client starts watching for them then.
            Self::Legacy => &[r#"{"type":"connection_ack"}"#, r#"{"type":"ka"}"#],
        }
    }

    /// What refuses `connection_init` (its token did not verify): a message
    /// to send first, if the protocol has one, and the close.
    pub fn refusal(self, why: &str) -> (Option<String>, (u16, String)) {
        let close = (4403, format!("Forbidden: {why}"));
        match self {
            Self::TransportWs => (None, close),
            Self::Legacy => (
                Some(
                    json!({ "type": "connection_error", "payload": error(why, "UNAUTHENTICATED") })
                        .to_string(),
                ),
                close,
            ),
        }
    }

    /// The keep-alive sent to a quiet client.
    pub fn keepalive(self) -> &'static str {
        match self {
            Self::TransportWs => r#"{"type":"ping"}"#,
            Self::Legacy => r#"{"type":"ka"}"#,
        }
    }

    /// The messages carrying `frame` of operation `id`.
    pub fn frame(self, id: &str, frame: Frame) -> Vec<String> {
        let id = Value::String(id.to_owned()).to_string();
        let next = if self == Self::Legacy { "data" } else { "next" };
        let complete = format!("{{\"id\":{id},\"type\":\"complete\"}}");
        match frame {
            Frame::Next(body) => {
                let mut text = String::with_capacity(body.len() + id.len() + 32);
                text.push_str("{\"id\":");
                text.push_str(&id);
                text.push_str(",\"type\":\"");
                text.push_str(next);
                text.push_str("\",\"payload\":");
                // The body is JSON written by serde_json: valid UTF-8.
                text.push_str(&String::from_utf8_lossy(&body));
                text.push('}');
                vec![text]
            }
            Frame::Error(errors) => match self {
                Self::TransportWs => {
                    vec![format!(
                        "{{\"id\":{id},\"type\":\"error\",\"payload\":{errors}}}"
                    )]
                }
                Self::Legacy => vec![
                    format!(
                        "{{\"id\":{id},\"type\":\"data\",\"payload\":{{\"errors\":{errors}}}}}"
                    ),
                    complete,
                ],
            },
            Frame::Complete => vec![complete],
        }
    }
}

/// One GraphQL error with its code.
fn error(message: &str, code: &str) -> Value {
    json!({ "message": message, "extensions": { "code": code } })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn offering(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn the_modern_protocol_wins_when_both_are_offered() {
        use Subprotocol::*;
        assert_eq!(Subprotocol::chosen(&offering("graphql-ws")), Some(Legacy));
        assert_eq!(
            Subprotocol::chosen(&offering("graphql-ws, graphql-transport-ws")),
            Some(TransportWs)
        );
        assert_eq!(Subprotocol::chosen(&offering("graphql-wss, mqtt")), None);
        assert_eq!(Subprotocol::chosen(&HeaderMap::new()), None);
    }

    #[test]
    fn each_protocol_names_its_messages() {
        let legacy = Subprotocol::Legacy;
        assert!(matches!(
            legacy.read(r#"{"type":"start","id":"1","payload":{}}"#),
            Command::Start { id: Some(id), .. } if id == "1"
        ));
        assert!(matches!(
            legacy.read(r#"{"type":"subscribe","id":"1"}"#),
            Command::Fault(Fault::UnknownType { .. })
        ));
        assert!(matches!(
            Subprotocol::TransportWs.read(r#"{"type":"stop","id":"1"}"#),
            Command::Fault(Fault::UnknownType { .. })
        ));
        let body = bytes::Bytes::from_static(br#"{"data":{"a":1}}"#);
        assert_eq!(
            legacy.frame("7", Frame::Next(body)),
            [r#"{"id":"7","type":"data","payload":{"data":{"a":1}}}"#]
        );
        assert_eq!(
            legacy.frame("7", Frame::Error(json!([{ "message": "no" }]))),
            [
                r#"{"id":"7","type":"data","payload":{"errors":[{"message":"no"}]}}"#,
                r#"{"id":"7","type":"complete"}"#
            ]
        );
        assert!(matches!(
            legacy.reply(Fault::Unreadable("eof".into())),
            Reply::Send(text) if text.contains("connection_error")
        ));
    }
}
