//! Edge authentication: bearer tokens are verified before any subgraph is
//! called, with the users subgraph's public keys, either fixed (a PEM file,
//! `dev`) or fetched from its JWKS URL, cached, and fetched again when a
//! token names a key the cache does not know (keys rotate). Access tokens of
//! an account whose access changed after they were signed are refused too:
//! the verifier checks the process's cut-offs ([`auth::revocation`]),
//! which the launcher keeps filled.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

pub use auth::{Claims, TokenError};
use auth::{TokenSettings, TokenType, Verifier};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// How the gateway checks bearer tokens.
pub enum EdgeAuth {
    /// Fixed keys.
    Keys(Arc<Verifier>),
    /// Keys from a JWKS URL.
    Jwks(Box<Jwks>),
}

impl EdgeAuth {
    /// Verifies an access token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match self {
            EdgeAuth::Keys(verifier) => verifier.verify(token, TokenType::Access),
            EdgeAuth::Jwks(jwks) => jwks.verify(token).await,
        }
    }
}

/// Keys fetched from a JWKS URL.
pub struct Jwks {
    url: Uri,
    settings: TokenSettings,
    min_refresh: Duration,
    current: RwLock<Option<Arc<Verifier>>>,
    last_fetch: Mutex<Option<Instant>>,
    http: Client<HttpConnector, Empty<Bytes>>,
}

impl Jwks {
    /// Keys from `url`, fetched on first use and again on an unknown key id,
    /// but not more often than every `min_refresh`.
    pub fn new(url: Uri, settings: TokenSettings, min_refresh: Duration) -> Self {
        Self {
            url,
            settings,
            min_refresh,
            current: RwLock::new(None),
            last_fetch: Mutex::new(None),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn verifier(&self) -> Option<Arc<Verifier>> {
        self.current.read().ok().and_then(|v| v.clone())
    }

    async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if let Some(verifier) = self.verifier() {
            match verifier.verify(token, TokenType::Access) {
                Err(TokenError::UnknownKey) => {}
                outcome => return outcome,
            }
        }
        if let Err(err) = self.refresh().await {
            tracing::warn!(url = %self.url, error = %err, "cannot fetch the JWKS");
        }
        match self.verifier() {
            Some(verifier) => verifier.verify(token, TokenType::Access),
            None => Err(TokenError::UnknownKey),
        }
    }

    async fn refresh(&self) -> anyhow::Result<()> {
        {
            let mut last = self
                .last_fetch
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            if last.is_some_and(|at| at.elapsed() < self.min_refresh) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let response =
            tokio::time::timeout(Duration::from_secs(5), self.http.get(self.url.clone())).await??;
        anyhow::ensure!(
            response.status().is_success(),
            "JWKS answered HTTP {}",
            response.status()
        );
        let body = http_body_util::Limited::new(response.into_body(), 1024 * 1024)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the JWKS: {e}"))?
            .to_bytes();
        let document: serde_json::Value = serde_json::from_slice(&body)?;
        let verifier = Verifier::from_jwks(&document, &self.settings)?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::new(verifier));
        }
        Ok(())
    }
}
