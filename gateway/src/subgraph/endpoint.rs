//! [`Endpoint`]: a subgraph's URL and how it is reached. A plain `http://`
//! subgraph goes by the HTTP/1.1 lane ([`crate::subgraph::pool`]), untouched
//! by everything else here; an `https://` one, or one spoken to in HTTP/2
//! with prior knowledge, through a [`Connector`] of its own.

use std::sync::Arc;

use hyper::{
    Uri,
    header::{HeaderName, HeaderValue},
};

use crate::subgraph::{
    connector::Connector,
    options::{Field, OptionsError, SubgraphOptions},
    tls,
};

/// A subgraph's URL and the way it is reached.
#[derive(Clone)]
pub struct Endpoint {
    url: Uri,
    /// `None`: the HTTP/1.1 lane.
    connector: Option<Arc<Connector>>,
    /// Sent on every fetch (the configuration's `subgraphs.<name>.headers`).
    headers: Arc<[(HeaderName, HeaderValue)]>,
    /// The subgraph's name, as `/metrics` labels its fetches (empty until
    /// [`crate::subgraph::Subgraphs::new`] names it).
    name: Arc<str>,
}

impl Endpoint {
    /// The subgraph at `url`, reached as `options` say. Every file they name
    /// is read now; TLS settings for an `http://` URL are refused (they
    /// would be silently unused, and the subgraph reached in the clear).
    pub fn new(url: Uri, options: &SubgraphOptions) -> Result<Self, OptionsError> {
        let connector = match url.scheme_str() {
            Some("https") => {
                let config = tls::client_config(options)?;
                Some(Connector::new(&url, Some(config), options.http2))
            }
            scheme if options.sets_tls() => {
                let field = options.fields().next().unwrap_or(Field::CaFile);
                return Err(OptionsError::new(
                    field,
                    format!(
                        "the subgraph's URL is {}://, not https://",
                        scheme.unwrap_or("")
                    ),
                ));
            }
            Some("http") if options.http2 => Some(Connector::new(&url, None, true)),
            _ => None,
        };
        Ok(Self {
            url,
            connector: connector.map(Arc::new),
            headers: options.headers.clone().into(),
            name: Arc::from(""),
        })
    }

    /// The static headers every fetch to the subgraph carries.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The static headers, shared: what tells two subgraphs at one URL apart.
    pub(crate) fn shared_headers(&self) -> &Arc<[(HeaderName, HeaderValue)]> {
        &self.headers
    }

    /// The same endpoint, labelled `name` in `/metrics`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// The subgraph's name as `/metrics` labels it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the subgraph is.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The connections beyond the HTTP/1.1 lane, if the subgraph needs them.
    pub(crate) fn connector(&self) -> Option<&Arc<Connector>> {
        self.connector.as_ref()
    }
}

/// A subgraph URL reached as its scheme says alone (no CA file, client
/// certificate or prior knowledge).
impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let url: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        Self::new(url, &SubgraphOptions::default()).map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("lane", &self.connector.is_none())
            .finish()
    }
}
