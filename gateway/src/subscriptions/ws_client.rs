//! The gateway as a `graphql-transport-ws` client: one subscription opened on
//! the subgraph that owns a subscription's root field.
//!
//! The caller's bearer token goes in `connection_init`, so the subgraph
//! authorizes the subscription as it would an HTTP request. The link is kept
//! alive with the protocol's `ping`: a subgraph that answers nothing for two
//! keep-alive periods is taken as lost, like one whose socket closes, so a
//! client is never left waiting on a dead subgraph. The subgraph's static
//! headers (`subgraphs.<name>.headers`) go on the upgrade request, as they go
//! on every fetch.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper::Uri;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        http::{HeaderName, HeaderValue},
        protocol::WebSocketConfig,
    },
};

/// The subprotocol both sides speak.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// How often a quiet link is pinged; no answer for two periods means it is lost.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Buffers small enough for thousands of open subscriptions (tungstenite
/// allocates its read buffer eagerly; the default is 128 KiB).
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
}

/// What the subgraph said next about the subscription.
#[derive(Debug)]
pub enum Upstream {
    /// One event: its `data` and `errors`.
    Next(Value),
    /// The subscription failed (the payload's GraphQL errors); nothing follows.
    Error(Value),
    /// The subscription ended normally.
    Complete,
    /// The link broke or stopped answering, with why.
    Lost(String),
}

/// One open subscription on a subgraph.
pub struct Subscription {
    socket: WebSocketStream<TcpStream>,
    keepalive: Duration,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<Value>,
}

/// Connects to the subgraph at `url` with its static `headers`, authenticates
/// with `token` and starts `query`. Fails (with why) when the subgraph cannot
/// be reached, refuses the connection, or does not acknowledge within `deadline`.
pub async fn subscribe(
    url: &Uri,
    headers: &[(HeaderName, HeaderValue)],
    token: Option<&str>,
    query: &str,
    variables: Map<String, Value>,
    deadline: Duration,
) -> Result<Subscription, String> {
    tokio::time::timeout(deadline, open(url, headers, token, query, variables))
        .await
        .unwrap_or_else(|_| Err(format!("no connection_ack within {deadline:?}")))
}

async fn open(
    url: &Uri,
    headers: &[(HeaderName, HeaderValue)],
    token: Option<&str>,
    query: &str,
    variables: Map<String, Value>,
) -> Result<Subscription, String> {
    let authority = url
        .authority()
        .ok_or_else(|| format!("the subgraph URL {url} has no host"))?;
    // Over plain TCP only: an https:// subgraph's events (and the token in
    // `connection_init`) must not go in the clear to its port 80.
    if url.scheme_str() != Some("http") {
        return Err(format!(
            "subscriptions to {url} need ws://, and wss:// is not supported yet"
        ));
    }
    let port = authority.port_u16().unwrap_or(80);
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let mut request = format!("ws://{}:{port}{path}", authority.host())
        .into_client_request()
        .map_err(|e| format!("bad subgraph URL {url}: {e}"))?;
    for (name, value) in headers {
        request.headers_mut().append(name.clone(), value.clone());
    }
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
    let tcp = TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut socket, _) = client_async_with_config(request, tcp, Some(socket_config()))
        .await
        .map_err(|e| format!("WebSocket handshake with {authority} failed: {e}"))?;
    let init = match token {
        Some(token) => {
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })
        }
        None => json!({ "type": "connection_init", "payload": {} }),
    };
    send(&mut socket, &init).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Incoming = serde_json::from_str(&text)
                    .map_err(|e| format!("the subgraph sent an unreadable message: {e}"))?;
                match message.kind.as_str() {
                    "connection_ack" => break,
                    "ping" => send(&mut socket, &json!({ "type": "pong" })).await?,
                    other => return Err(format!("expected connection_ack, got {other}")),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(f) => format!(
                        "the subgraph refused the connection: {} {}",
                        f.code, f.reason
                    ),
                    None => "the subgraph closed the connection".into(),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("the subgraph connection failed: {e}")),
            None => return Err("the subgraph closed the connection".into()),
        }
    }
    let subscribe = json!({
        "id": "1",
        "type": "subscribe",
        "payload": { "query": query, "variables": variables },
    });
    send(&mut socket, &subscribe).await?;
    Ok(Subscription {
        socket,
        keepalive: KEEPALIVE,
    })
}

async fn send(socket: &mut WebSocketStream<TcpStream>, message: &Value) -> Result<(), String> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| format!("cannot write to the subgraph: {e}"))
}

impl Subscription {
    /// Pings after `every` of silence instead of [`KEEPALIVE`].
    pub fn with_keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every;
        self
    }

    /// Waits for what comes next. After `Error`, `Complete` or `Lost`
    /// nothing more comes.
    pub async fn next(&mut self) -> Upstream {
        let mut pinged = false;
        loop {
            let message = match tokio::time::timeout(self.keepalive, self.socket.next()).await {
                Ok(message) => message,
                Err(_) if pinged => {
                    return Upstream::Lost(format!(
                        "the subgraph did not answer a ping within {:?}",
                        self.keepalive
                    ));
                }
                Err(_) => {
                    if let Err(why) = send(&mut self.socket, &json!({ "type": "ping" })).await {
                        return Upstream::Lost(why);
                    }
                    pinged = true;
                    continue;
                }
            };
            pinged = false;
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Upstream::Lost(match frame {
                        Some(f) => format!(
                            "the subgraph closed the subscription: {} {}",
                            f.code, f.reason
                        ),
                        None => "the subgraph closed the subscription".into(),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    return Upstream::Lost(format!("the subgraph connection failed: {e}"));
                }
                None => return Upstream::Lost("the subgraph connection closed".into()),
            };
            let Ok(message) = serde_json::from_str::<Incoming>(&text) else {
                return Upstream::Lost("the subgraph sent an unreadable message".into());
            };
            match message.kind.as_str() {
                "next" => return Upstream::Next(message.payload.unwrap_or(Value::Null)),
                "error" => return Upstream::Error(message.payload.unwrap_or(Value::Null)),
                "complete" => return Upstream::Complete,
                "ping" => {
                    if let Err(why) = send(&mut self.socket, &json!({ "type": "pong" })).await {
                        return Upstream::Lost(why);
                    }
                }
                _ => {}
            }
        }
    }

    /// Stops the subscription and closes the link, politely but without
    /// waiting long for a subgraph that does not read.
    pub async fn close(mut self) {
        let goodbye = async {
            let _ = send(&mut self.socket, &json!({ "id": "1", "type": "complete" })).await;
            let _ = self.socket.close(None).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), goodbye).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_upgrade_request_carries_the_subgraphs_static_headers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Uri = format!("http://{}/graphql", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let seen = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the gateway hung up mid-request");
                head.extend_from_slice(&buf[..n]);
            }
            // Refused: only the request's headers matter here.
            let _ = socket
                .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                .await;
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        let headers = [
            crate::subgraph::options::static_header("x-api-key", "k-123").unwrap(),
            crate::subgraph::options::static_header("x-tenant", "north").unwrap(),
        ];
        let opened = subscribe(
            &url,
            &headers,
            None,
            "subscription { ticks }",
            Map::new(),
            Duration::from_secs(5),
        )
        .await;
        assert!(opened.is_err(), "a 403 is not a subscription");
        let head = seen.await.unwrap();
        assert!(head.contains("\r\nx-api-key: k-123\r\n"), "{head}");
        assert!(head.contains("\r\nx-tenant: north\r\n"), "{head}");
        assert!(
            head.contains("\r\nsec-websocket-protocol: graphql-transport-ws\r\n"),
            "{head}"
        );
    }
}
