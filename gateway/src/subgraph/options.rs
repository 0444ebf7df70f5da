//! [`SubgraphOptions`]: how one subgraph is reached beyond its URL, filled
//! from the environment today (`SUBGRAPH_CA_FILES`, `SUBGRAPH_CLIENT_CERTS`,
//! `SUBGRAPH_CLIENT_KEYS`, `SUBGRAPH_HTTP2`; see `crate::config`) and by
//! whatever configuration source comes next, into the same struct.

use std::path::PathBuf;

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
