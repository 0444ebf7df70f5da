//! Persisted documents: Automatic Persisted Queries and trusted documents.
//!
//! **APQ** (the `persistedQuery` extension): a client sends only the sha256
//! of its document; an unknown hash answers `PERSISTED_QUERY_NOT_FOUND`, the
//! client retries with the document, the gateway checks the hash and keeps
//! the document once it validates: in memory (bounded) and, with Redis, under
//! `grocery:apq:<hash>` for every replica.
//!
//! **Trusted documents**: per-client manifests `<dir>/<client>.json` in the
//! Apollo persisted-query manifest format, reloaded when the directory
//! changes. A request names a document by `extensions.persistedQuery.sha256Hash`
//! or `documentId` (optionally `sha256:`-prefixed). The client is the
//! `graphql-client-name` (or `apollographql-client-name`) header: with it,
//! only that client's manifest counts; without it, any manifest does.
//! Tokens of the roles in [`PersistedOptions::only_roles`] (grocery's
//! launcher names `PARTNER`) — and everyone under `persisted_only` — may run
//! only documents of a manifest (`PERSISTED_QUERY_REQUIRED` otherwise). The
//! gateway knows no roles of its own: which ones are held to manifests is
//! configuration. A manifest may also hold `quotas` for its documents, which
//! [`super::usage`] enforces; documents are named there by their manifest
//! `name` (their id without one).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

/// How persisted documents are served.
#[derive(Clone, Debug)]
pub struct PersistedOptions {
    /// The directory of trusted-document manifests (`<client>.json`).
    pub manifests: Option<PathBuf>,
    /// Only manifest documents run, for every caller (`--persisted-only`).
    pub only: bool,
    /// Callers whose token carries one of these roles run only manifest
    /// documents (`PERSISTED_ONLY_ROLES`); none by default.
    pub only_roles: Vec<auth::RoleName>,
    /// Callers whose token carries one of these roles may read partner
    /// usage and set quotas (`USAGE_ADMIN_ROLES`); none by default.
    pub admin_roles: Vec<auth::RoleName>,
    /// Whether clients may register documents by hash (APQ).
    pub apq: bool,
    /// Bytes of APQ documents kept in memory.
    pub apq_memory_bytes: usize,
    /// How long Redis keeps an APQ document after it was registered.
    pub apq_ttl: Duration,
    /// Where APQ documents are shared between replicas.
    pub redis_url: Option<String>,
}

impl Default for PersistedOptions {
    fn default() -> Self {
        Self {
            manifests: None,
            only: false,
            only_roles: Vec::new(),
            admin_roles: Vec::new(),
            apq: true,
            apq_memory_bytes: 16 * 1024 * 1024,
            apq_ttl: Duration::from_secs(24 * 3600),
            redis_url: None,
        }
    }
}

/// The manifest format's name, as Apollo's tooling writes it.
pub const MANIFEST_FORMAT: &str = "apollo-persisted-query-manifest";

#[derive(Deserialize)]
struct ManifestFile {
    format: String,
    version: u32,
    operations: Vec<ManifestOperation>,
    /// grocery's addition: quotas per document (see [`crate::pipeline::usage::quota`]).
    #[serde(default)]
    quotas: Option<crate::pipeline::usage::quota::ManifestQuotas>,
}

#[derive(Deserialize)]
struct ManifestOperation {
    id: String,
    body: String,
    #[serde(default)]
    name: Option<String>,
}

/// One client's trusted documents, by id (and by the sha256 of their body).
pub type Manifest = HashMap<String, Arc<str>>;

/// Parses one manifest: its documents by id and by body hash.
pub fn parse_manifest(text: &str) -> anyhow::Result<Manifest> {
    Ok(parse_client(text)?.documents)
}

/// One client's manifest: its documents, what each is called in usage
/// counts and metrics, and its quotas.
#[derive(Default)]
pub struct ClientManifest {
    pub documents: Manifest,
    /// Each document's name (its id when it has none), by id and by body hash.
    pub labels: HashMap<String, Arc<str>>,
    /// The manifest's quotas, by document name.
    pub quotas: crate::pipeline::usage::quota::Quotas,
}

/// Parses one manifest with its labels and quotas.
pub fn parse_client(text: &str) -> anyhow::Result<ClientManifest> {
    let file: ManifestFile = serde_json::from_str(text)?;
    anyhow::ensure!(
        file.format == MANIFEST_FORMAT,
        "format is {:?}, not {MANIFEST_FORMAT:?}",
        file.format
    );
    anyhow::ensure!(
        file.version == 1,
        "version {} is not supported (1 is)",
        file.version
    );
    let mut documents = Manifest::new();
    let mut labels = HashMap::new();
    for op in file.operations {
        anyhow::ensure!(
            !op.id.is_empty() && !op.body.trim().is_empty(),
            "operation {:?} has an empty id or body",
            op.name.unwrap_or_default()
        );
        let body: Arc<str> = op.body.into();
        let label: Arc<str> = match op.name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name.into(),
            _ => op.id.as_str().into(),
        };
        for key in [op.id, sha256_hex(&body)] {
            if let Some(other) = documents.get(&key)
                && **other != *body
            {
                anyhow::bail!("id {key:?} names two different documents");
            }
            documents.insert(key.clone(), body.clone());
            labels.insert(key, label.clone());
        }
    }
    let quotas = match file.quotas {
        Some(quotas) => quotas.resolve(&labels)?,
        None => Default::default(),
    };
    Ok(ClientManifest {
        documents,
        labels,
        quotas,
    })
}

/// Every client's manifest.
#[derive(Default)]
pub struct Manifests {
    by_client: HashMap<String, ClientManifest>,
}

impl Manifests {
    /// Every `*.json` of `dir`, by client (the file stem). One bad file fails
    /// the whole load, so a broken edit never half-applies.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut by_client = HashMap::new();
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(client) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let manifest =
                parse_client(&text).with_context(|| format!("manifest {}", path.display()))?;
            by_client.insert(client.to_owned(), manifest);
        }
        Ok(Self { by_client })
    }

    /// The clients that have a manifest.
    pub fn clients(&self) -> impl Iterator<Item = (&str, &Manifest)> {
        self.by_client
            .iter()
            .map(|(c, m)| (c.as_str(), &m.documents))
    }

    /// `client`'s manifest, labels and quotas.
    pub fn client(&self, client: &str) -> Option<(&str, &ClientManifest)> {
        self.by_client
            .get_key_value(client)
            .map(|(c, m)| (c.as_str(), m))
    }

    /// The document `id` of `client`'s manifest, or of any manifest when no
    /// client is named.
    fn find(&self, client: Option<&str>, id: &str) -> Option<Arc<str>> {
        let id = id.strip_prefix("sha256:").unwrap_or(id);
        match client {
            Some(client) => self.by_client.get(client)?.documents.get(id).cloned(),
            None => self
                .by_client
                .values()
                .find_map(|m| m.documents.get(id).cloned()),
        }
    }

    /// The name of `client`'s trusted document `key` (an id or a body hash).
    pub fn label(&self, client: &str, key: &str) -> Option<Arc<str>> {
        let key = key.strip_prefix("sha256:").unwrap_or(key);
        self.by_client.get(client)?.labels.get(key).cloned()
    }
}

/// Lower-case hex sha256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// APQ documents kept in memory: two generations of at most half the byte
/// budget each; a hit in the old one moves the document to the new one, and
/// when the new one is full the old one is dropped — least recently used
/// documents go first, at O(1) per operation.
#[derive(Default)]
struct Recent {
    young: HashMap<String, Arc<str>>,
    old: HashMap<String, Arc<str>>,
    young_bytes: usize,
}

impl Recent {
    fn get(&mut self, hash: &str, budget: usize) -> Option<Arc<str>> {
        if let Some(doc) = self.young.get(hash) {
            return Some(doc.clone());
        }
        let doc = self.old.remove(hash)?;
        self.put(hash.to_owned(), doc.clone(), budget);
        Some(doc)
    }

    fn put(&mut self, hash: String, doc: Arc<str>, budget: usize) {
        let size = hash.len() + doc.len();
        if size > budget / 2 {
            return;
        }
        if self.young_bytes + size > budget / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        if self.young.insert(hash, doc).is_none() {
            self.young_bytes += size;
        }
    }
}

/// What a request's persisted-document fields resolved to.
#[derive(Debug, Default)]
pub struct Resolution {
    /// The document to run, when the request did not carry it.
    pub query: Option<String>,
    /// The document is in a manifest the caller may use.
    pub trusted: bool,
    /// An APQ hash to register once the document validated.
    pub register: Option<String>,
    /// The name of the trusted document, when the request named its client
    /// and the document is in that client's manifest: what usage and quotas
    /// count.
    pub document: Option<Arc<str>>,
}

/// Why persisted-document fields were refused: a code and a message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    /// How the request metrics count it: an APQ miss apart from refusals.
    pub fn outcome(&self) -> crate::metrics::Outcome {
        if self.code == "PERSISTED_QUERY_NOT_FOUND" {
            crate::metrics::Outcome::PersistedQueryNotFound
        } else {
            crate::metrics::Outcome::Refused
        }
    }

    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Trusted manifests and the APQ store.
pub struct Documents {
    options: PersistedOptions,
    manifests: RwLock<Arc<Manifests>>,
    recent: Mutex<Recent>,
    redis: Option<redis::aio::ConnectionManager>,
    counts: Counts,
}

/// Outcomes of persisted-document lookups, for `/metrics`.
#[derive(Default)]
struct Counts {
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
    registered: std::sync::atomic::AtomicU64,
    refused: std::sync::atomic::AtomicU64,
}

impl Documents {
    /// The store of `options`; its manifests are loaded now (a broken
    /// manifest directory fails start-up, not the first request).
    pub fn new(options: &PersistedOptions) -> anyhow::Result<Self> {
        let manifests = match &options.manifests {
            Some(dir) if dir.exists() => Manifests::load(dir)?,
            _ => Manifests::default(),
        };
        let redis = options
            .redis_url
            .as_deref()
            .map(crate::pipeline::replicas::connect)
            .transpose()?;
        Ok(Self {
            options: options.clone(),
            manifests: RwLock::new(Arc::new(manifests)),
            recent: Mutex::default(),
            redis,
            counts: Counts::default(),
        })
    }

    /// The manifests in use.
    pub fn manifests(&self) -> Arc<Manifests> {
        match self.manifests.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the manifest directory again; on error the old manifests stay.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.options.manifests else {
            return Ok(());
        };
        let loaded = Arc::new(if dir.exists() {
            Manifests::load(dir)?
        } else {
            Manifests::default()
        });
        match self.manifests.write() {
            Ok(mut m) => *m = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(())
    }

    /// The Redis connection shared with replicas, when there is one.
    pub fn redis(&self) -> Option<redis::aio::ConnectionManager> {
        self.redis.clone()
    }

    /// Whether only manifest documents run for everyone.
    pub fn only(&self) -> bool {
        self.options.only
    }

    /// Whether a caller whose token carries `role` runs only manifest documents.
    pub fn only_for(&self, role: &auth::RoleName) -> bool {
        self.options.only_roles.contains(role)
    }

    /// Resolves a request's `query`, `documentId` and `extensions`.
    /// `restricted` callers may run only trusted documents.
    pub async fn resolve(
        &self,
        query: Option<&str>,
        document_id: Option<&str>,
        extensions: Option<&Value>,
        client: Option<&str>,
        restricted: bool,
    ) -> Result<Resolution, Refused> {
        let result = self
            .resolve_inner(query, document_id, extensions, client, restricted)
            .await;
        if result.is_err() {
            self.counts
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn resolve_inner(
        &self,
        query: Option<&str>,
        document_id: Option<&str>,
        extensions: Option<&Value>,
        client: Option<&str>,
        restricted: bool,
    ) -> Result<Resolution, Refused> {
        let apq_hash = match extensions.and_then(|e| e.get("persistedQuery")) {
            None | Some(Value::Null) => None,
            Some(pq) => {
                if pq.get("version").and_then(Value::as_i64) != Some(1) {
                    return Err(Refused::new(
                        "PERSISTED_QUERY_NOT_SUPPORTED",
                        "persistedQuery.version must be 1",
                    ));
                }
                let hash = pq
                    .get("sha256Hash")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Refused::new(
                            "BAD_REQUEST",
                            "persistedQuery needs a sha256Hash (64 hex digits)",
                        )
                    })?;
                Some(hash.to_ascii_lowercase())
            }
        };
        let manifests = self.manifests();
        let query = query.filter(|q| !q.trim().is_empty());
        let id = document_id.map(str::to_owned).or(apq_hash.clone());
        let mut resolution = Resolution::default();
        match (query, id) {
            (None, None) => {}
            (Some(query), None) => {
                // A full document runs for a restricted caller only when it
                // is, byte for byte, one of the trusted ones.
                if restricted {
                    let hash = sha256_hex(query);
                    resolution.trusted = manifests.find(client, &hash).is_some();
                    resolution.document = client.and_then(|c| manifests.label(c, &hash));
                }
            }
            (Some(query), Some(id)) => {
                let hash = sha256_hex(query);
                let named = id
                    .strip_prefix("sha256:")
                    .unwrap_or(&id)
                    .to_ascii_lowercase();
                if apq_hash.is_some() && named != hash {
                    return Err(Refused::new(
                        "PERSISTED_QUERY_HASH_MISMATCH",
                        "the sha256Hash does not match the query",
                    ));
                }
                resolution.trusted = manifests.find(client, &hash).is_some();
                resolution.document = client.and_then(|c| manifests.label(c, &hash));
                if !resolution.trusted && apq_hash.is_some() && self.options.apq && !restricted {
                    resolution.register = Some(hash);
                }
            }
            (None, Some(id)) => {
                if let Some(body) = manifests.find(client, &id) {
                    self.count_hit(true);
                    resolution.query = Some(body.to_string());
                    resolution.trusted = true;
                    resolution.document = client.and_then(|c| manifests.label(c, &id));
                } else if apq_hash.is_some() && !self.options.apq {
                    self.count_hit(false);
                    return Err(Refused::new(
                        "PERSISTED_QUERY_NOT_SUPPORTED",
                        "this gateway does not store persisted queries; send the query",
                    ));
                } else if let Some(body) = self.lookup(&id).await {
                    self.count_hit(true);
                    resolution.query = Some(body.to_string());
                } else {
                    self.count_hit(false);
                    return Err(Refused::new(
                        "PERSISTED_QUERY_NOT_FOUND",
                        "PersistedQueryNotFound",
                    ));
                }
            }
        }
        if restricted && !resolution.trusted {
            let whose = match client {
                Some(client) => format!("the {client:?} client's manifest"),
                None => "a trusted-document manifest".to_owned(),
            };
            return Err(Refused::new(
                "PERSISTED_QUERY_REQUIRED",
                format!(
                    "only documents of {whose} may run here; send its id as documentId or extensions.persistedQuery"
                ),
            ));
        }
        Ok(resolution)
    }

    fn count_hit(&self, hit: bool) {
        let counter = if hit {
            &self.counts.hits
        } else {
            &self.counts.misses
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// An APQ document by hash: memory first, then Redis.
    async fn lookup(&self, id: &str) -> Option<Arc<str>> {
        if !self.options.apq {
            return None;
        }
        let hash = id
            .strip_prefix("sha256:")
            .unwrap_or(id)
            .to_ascii_lowercase();
        let budget = self.options.apq_memory_bytes;
        if let Some(doc) = self.recent.lock().ok()?.get(&hash, budget) {
            return Some(doc);
        }
        let mut redis = self.redis.clone()?;
        let stored: Option<String> = match redis::cmd("GET")
            .arg(apq_key(&hash))
            .query_async(&mut redis)
            .await
        {
            Ok(stored) => stored,
            Err(err) => {
                tracing::warn!(%err, "Redis is unavailable for persisted queries; using memory only");
                return None;
            }
        };
        // Whatever Redis holds is checked like a client's document.
        let doc: Arc<str> = stored.filter(|d| sha256_hex(d) == hash)?.into();
        if let Ok(mut recent) = self.recent.lock() {
            recent.put(hash, doc.clone(), budget);
        }
        Some(doc)
    }

    /// Keeps the APQ document `query` under `hash` (its verified sha256).
    pub async fn register(&self, hash: String, query: &str) {
        self.counts
            .registered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let doc: Arc<str> = query.into();
        if let Ok(mut recent) = self.recent.lock() {
            recent.put(hash.clone(), doc, self.options.apq_memory_bytes);
        }
        if let Some(mut redis) = self.redis.clone() {
            let ttl = self.options.apq_ttl.as_secs().max(1);
            let set = redis::cmd("SET")
                .arg(apq_key(&hash))
                .arg(query)
                .arg("EX")
                .arg(ttl)
                .to_owned();
            if let Err(err) = set.query_async::<()>(&mut redis).await {
                tracing::warn!(%err, "could not share a persisted query through Redis");
            }
        }
    }

    /// Prometheus lines for the lookups so far.
    pub fn render(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.counts;
        format!(
            "# HELP grocery_gateway_persisted_queries_total Persisted-document lookups by outcome.\n\
             # TYPE grocery_gateway_persisted_queries_total counter\n\
             grocery_gateway_persisted_queries_total{{outcome=\"hit\"}} {}\n\
             grocery_gateway_persisted_queries_total{{outcome=\"miss\"}} {}\n\
             grocery_gateway_persisted_queries_total{{outcome=\"registered\"}} {}\n\
             grocery_gateway_persisted_queries_total{{outcome=\"refused\"}} {}\n",
            c.hits.load(Relaxed),
            c.misses.load(Relaxed),
            c.registered.load(Relaxed),
            c.refused.load(Relaxed),
        )
    }
}

fn apq_key(hash: &str) -> String {
    format!("grocery:apq:{hash}")
}

/// Reloads `documents`' manifests whenever a file of their directory
/// changes, checking every `every`. A broken manifest is logged and the
/// previous ones keep serving. Runs until dropped.
pub async fn watch(documents: Arc<Documents>, every: Duration) {
    let Some(dir) = documents.options.manifests.clone() else {
        return;
    };
    let stamp = |dir: &Path| -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
        let mut seen: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.path(), meta.modified().ok(), meta.len()))
            })
            .collect();
        seen.sort();
        seen
    };
    // Nothing seen yet: the first look loads whatever changed since start-up.
    let mut seen = Vec::new();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = stamp(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let docs = documents.clone();
        match tokio::task::spawn_blocking(move || docs.reload()).await {
            Ok(Ok(())) => {
                tracing::info!(dir = %dir.display(), "persisted-document manifests reloaded")
            }
            Ok(Err(err)) => tracing::error!(
                dir = %dir.display(),
                error = %format!("{err:#}"),
                "a persisted-document manifest does not load; the previous ones keep serving"
            ),
            Err(err) => tracing::error!(%err, "manifest reload panicked"),
        }
    }
}

/// The client a request names (`graphql-client-name`, or Apollo's
/// `apollographql-client-name`).
pub fn client_name(headers: &axum::http::HeaderMap) -> Option<&str> {
    use axum::http::HeaderName;
    static NAMES: [HeaderName; 2] = [
        HeaderName::from_static("graphql-client-name"),
        HeaderName::from_static("apollographql-client-name"),
    ];
    NAMES
        .iter()
        .find_map(|name| headers.get(name)?.to_str().ok())
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(ops: &[(&str, &str)]) -> String {
        let operations: Vec<Value> = ops
            .iter()
            .map(|(id, body)| serde_json::json!({ "id": id, "name": "Op", "type": "query", "body": body }))
            .collect();
        serde_json::json!({ "format": MANIFEST_FORMAT, "version": 1, "operations": operations })
            .to_string()
    }

    #[test]
    fn sha256_matches_the_known_digest() {
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }

    #[test]
    fn manifests_are_indexed_by_id_and_by_body_hash() {
        let m = parse_manifest(&manifest(&[("custom-id", "{ a }")])).unwrap();
        assert_eq!(m.get("custom-id").map(|d| &**d), Some("{ a }"));
        assert_eq!(m.get(&sha256_hex("{ a }")).map(|d| &**d), Some("{ a }"));
    }

    #[test]
    fn manifests_refuse_other_formats_and_clashing_ids() {
        let wrong = serde_json::json!({ "format": "relay", "version": 1, "operations": [] });
        assert!(parse_manifest(&wrong.to_string()).is_err());
        let clash = manifest(&[("x", "{ a }"), ("x", "{ b }")]);
        assert!(
            parse_manifest(&clash)
                .unwrap_err()
                .to_string()
                .contains("two different")
        );
    }

    #[test]
    fn recent_drops_the_least_recently_used_generation() {
        let mut recent = Recent::default();
        // Room for two 10-byte entries per generation.
        let budget = 2 * 2 * 10;
        for key in ["aaaaa", "bbbbb", "ccccc"] {
            recent.put(key.into(), "12345".into(), budget);
        }
        // "aaaaa" and "bbbbb" are old now; touching "aaaaa" keeps it young.
        assert!(recent.get("aaaaa", budget).is_some());
        recent.put("ddddd".into(), "12345".into(), budget);
        recent.put("eeeee".into(), "12345".into(), budget);
        assert!(recent.get("bbbbb", budget).is_none(), "untouched: dropped");
        assert!(recent.get("eeeee", budget).is_some());
    }
}
