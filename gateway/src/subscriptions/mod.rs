//! Subscriptions through the gateway. Clients speak, on a WebSocket upgrade
//! of `/graphql`, `graphql-transport-ws` or the older `graphql-ws` of
//! subscriptions-transport-ws (chosen by `Sec-WebSocket-Protocol`), or
//! GraphQL over SSE as graphql-sse's protocol says: distinct connections
//! (`Accept: text/event-stream` on POST or GET) or a single connection
//! carrying every operation of a client (reservations: PUT, GET, POST and
//! DELETE on `/graphql`).
//!
//! A subscription is planned like any operation. The plan's `Subscription`
//! node names the subgraph that owns the root field: the gateway subscribes
//! there over `graphql-transport-ws` with the caller's token (see
//! [`ws_client`]) and, for every event, runs the rest of the plan — the
//! entity fetches for fields other subgraphs own — and shapes the result like
//! a query's. Events of one subscription are delivered in order.
//!
//! Protection: every client has a bounded outgoing buffer; one that stops
//! reading and lets it fill is closed (`1008`, policy violation; an SSE
//! stream ends) instead of growing the gateway's memory. Subscriptions are
//! limited per connection (or reserved SSE stream) and per user
//! (`SUBSCRIPTION_LIMIT`); SSE reservations per client and in all. Quiet
//! connections are pinged; a lost subgraph ends the subscription with an
//! error and `complete`.
//!
//! `graphql-transport-ws` close codes are the protocol's: 4400 bad message,
//! 4401 subscribe before `connection_ack`, 4403 refused token, 4408 no
//! `connection_init` in time, 4409 duplicate operation id, 4429 second
//! `connection_init`; `graphql-ws` answers with messages where its reference
//! server does (see [`subprotocol`]).
//!
//! - [`registry`]: subscriptions open, by user, and their limits;
//! - [`fanout`]: identical subscriptions sharing one upstream, events run
//!   through the rest of the plan, and one operation's run from its request;
//! - [`sse`], [`reservations`] and [`reserved_operations`]: GraphQL over
//!   SSE, distinct connections and single connection;
//! - [`mod@websocket`] and [`subprotocol`]: WebSocket connections, and what
//!   differs between the two subprotocols;
//! - [`ws_client`]: the gateway as a `graphql-transport-ws` client of subgraphs.
//!
//! Uses [`crate::pipeline`] (a subscription is prepared like any operation),
//! [`crate::execution`] and the leaf modules; the server routes to it.

pub mod fanout;
pub mod frame;
pub mod options;
pub mod registry;
pub mod reservations;
pub mod reserved_operations;
pub mod sse;
pub mod state;
pub mod subprotocol;
pub mod websocket;
pub mod ws_client;

pub use options::SubscriptionOptions;
pub use sse::{accepts_event_stream, as_event_stream, event_stream, prefers_event_stream};
pub use state::Subscriptions;
pub use websocket::websocket;
