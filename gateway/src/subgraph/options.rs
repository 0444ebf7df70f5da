//! [`SubgraphOptions`]: how one subgraph is reached beyond its URL, filled
//! from the environment (`SUBGRAPH_CA_FILES`, `SUBGRAPH_CLIENT_CERTS`,
//! `SUBGRAPH_CLIENT_KEYS`, `SUBGRAPH_HTTP2`, `SUBGRAPH_HEADERS`; see
//! `crate::config`), which the configuration file's `subgraphs:` fills.

use std::path::PathBuf;

use hyper::header::{HeaderName, HeaderValue};

/// How one subgraph is reached beyond its URL. The default is what its URL
/// says alone: `http://` on keep-alive HTTP/1.1 connections, `https://`
/// verified with the system's root certificates, offering HTTP/2 and
/// HTTP/1.1 and speaking what the subgraph picks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubgraphOptions {
    /// PEM certificates of certificate authorities the subgraph's
    /// certificate may be issued by, trusted beside the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The PEM certificate chain presented when the subgraph asks for one
    /// (mutual TLS), with [`Self::client_key`].
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of [`Self::client_cert`].
    pub client_key: Option<PathBuf>,
    /// HTTP/2 only: with prior knowledge (h2c) over `http://`, offering
    /// only `h2` over `https://`.
    pub http2: bool,
    /// Request headers sent on every fetch, each checked by [`static_header`].
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The most static headers one subgraph gets, and the longest value.
pub const MAX_STATIC_HEADERS: usize = 32;
const MAX_STATIC_VALUE: usize = 8192;

/// Headers a deployment may not set for every fetch: hop-by-hop ones, the
/// ones the gateway writes itself, and the ones it forwards from the client
/// (two values would fight).
const RESERVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "accept",
    "expect",
];

/// `name: value` as a static request header to a subgraph, or why not.
pub fn static_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    if RESERVED.contains(&header.as_str())
        || crate::subgraph::client::FORWARDED_HEADERS.contains(&header)
    {
        return Err(format!(
            "{header} is a header the gateway sets itself or a hop-by-hop one"
        ));
    }
    if value.len() > MAX_STATIC_VALUE {
        return Err(format!(
            "the value of {header} is longer than {MAX_STATIC_VALUE} bytes"
        ));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of {header} has a character a header may not carry"))?;
    Ok((header, value))
}

impl SubgraphOptions {
    /// Whether any TLS setting is given (they need an `https://` URL).
    pub fn sets_tls(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// The options set, for naming them in a message.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        [
            (self.ca_file.is_some(), Field::CaFile),
            (self.client_cert.is_some(), Field::ClientCert),
            (self.client_key.is_some(), Field::ClientKey),
            (self.http2, Field::Http2),
            (!self.headers.is_empty(), Field::Headers),
        ]
        .into_iter()
        .filter_map(|(set, field)| set.then_some(field))
    }
}

/// One of [`SubgraphOptions`]' settings, as a problem names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    CaFile,
    ClientCert,
    ClientKey,
    Http2,
    Headers,
}

impl Field {
    /// The environment variable that sets it (for every subgraph, as
    /// `name=value` pairs).
    pub fn variable(self) -> &'static str {
        match self {
            Field::CaFile => "SUBGRAPH_CA_FILES",
            Field::ClientCert => "SUBGRAPH_CLIENT_CERTS",
            Field::ClientKey => "SUBGRAPH_CLIENT_KEYS",
            Field::Http2 => "SUBGRAPH_HTTP2",
            Field::Headers => "SUBGRAPH_HEADERS",
        }
    }
}

/// Why a subgraph's options cannot be used: the setting and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", field.variable())]
pub struct OptionsError {
    pub field: Field,
    pub reason: String,
}

impl OptionsError {
    pub(crate) fn new(field: Field, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
