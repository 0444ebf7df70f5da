//! Subgraphs the gateway answers itself: a supergraph's subgraph whose URL
//! has the scheme `gateway:` (e.g. `gateway://usage`) is not fetched over
//! the network; its fetches go to the [`Local`] registered under that URL,
//! in this process. A supergraph without such a subgraph never meets one.

use std::{future::Future, pin::Pin};

use hyper::HeaderMap;

use crate::{
    subgraph::{FetchError, SubgraphResponse},
    value::Map,
};

/// The URL scheme of subgraphs answered in process.
pub const SCHEME: &str = "gateway";

/// Whether `url` names a subgraph answered in process.
pub fn is_local(url: &hyper::Uri) -> bool {
    url.scheme_str() == Some(SCHEME)
}

/// A subgraph answered in process: the fetch's document and variables, and
/// the client's headers (its bearer token among them).
pub trait Local: Send + Sync {
    fn answer<'a>(
        &'a self,
        query: &'a str,
        variables: Map,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<SubgraphResponse, FetchError>> + Send + 'a>>;
}
