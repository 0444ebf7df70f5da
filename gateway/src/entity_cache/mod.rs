//! The entity cache: each entity's answer to an `_entities` fetch, kept as
//! long as the subgraph's `Cache-Control` allows ([`policy`]), in Redis when
//! `REDIS_URL` is set (shared by every replica) and in a bounded LRU in this
//! process otherwise, or while Redis does not answer.
//!
//! As Apollo Router's entity cache does: an entry is one entity (its type and
//! key fields, [`EntityId`]) answered by one subgraph for one fetch (the
//! fetch's operation and variables, [`Variant`]). A `private` answer is kept
//! under the verified user's id and served to that user only; without a
//! verified user (anonymous, or a gateway that verifies no token) it is not
//! kept at all. Root fields (`product(sku:)`) are not entity fetches and are
//! never cached, nor are entities whose representation carries fields a
//! subgraph `@requires` (Apollo Router hashes those into the entry's key; not
//! done here yet), nor the fetches of a mutation's plan or of a subscription
//! event's private fields.
//!
//! Entries are dropped when their `max-age` (capped by `ENTITY_CACHE_MAX_TTL`)
//! passes, and at once by [`EntityCache::invalidate`]: the launcher calls it
//! for the domain events that say an entity changed (the gateway knows no
//! event bus). Every replica follows the whole event stream, so each drops
//! its own memory entries as well as the shared Redis ones.
//!
//! Layout: in Redis one hash per entity, `grocery:ec:<type>:<key>`, whose
//! fields are the variants (`<subgraph>|<fetch hash>|public` or
//! `…|user:<id>`) and whose values are `<deadline in ms since the epoch>
//! <JSON>`; invalidating an entity is one `DEL`. A lookup of one fetch is one
//! pipeline of `HMGET`s; storing its answers one pipeline of `HSET` +
//! `EXPIRE`. In memory the same: an LRU of entities, each with its variants.
//!
//! A leaf: uses only [`crate::value`]; the pipeline opens its Redis connection.

pub mod policy;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    num::NonZeroUsize,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::aio::ConnectionManager;
use rustc_hash::FxHashMap;
use serde_json::Value as Json;

use crate::value::Value;

pub use policy::{Policy, Scope};

/// Entities kept in memory unless `ENTITY_CACHE_SIZE` says otherwise.
pub const DEFAULT_ENTITIES: usize = 10_000;
/// The longest an entry is kept unless `ENTITY_CACHE_MAX_TTL` says otherwise.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(300);
/// Variants kept per entity in memory (fetches × private users); the
/// oldest goes first.
const VARIANTS_PER_ENTITY: usize = 16;
/// The longest type-and-key an entity may have to be cached: a key this
/// long is not an id anyone looks up twice.
const MAX_ID_BYTES: usize = 512;
/// The longest entity answer kept.
const MAX_VALUE_BYTES: usize = 256 * 1024;

/// How the entity cache is set up (`ENTITY_CACHE`, `ENTITY_CACHE_SIZE`,
/// `ENTITY_CACHE_MAX_TTL`, `REDIS_URL`).
#[derive(Clone, Debug)]
pub struct EntityCacheOptions {
    pub enabled: bool,
    /// Entities kept in this process's memory.
    pub entities: usize,
    /// The longest an entry is kept, whatever the subgraph says.
    pub max_ttl: Duration,
    /// Redis for entries every replica shares.
    pub redis_url: Option<String>,
}

impl Default for EntityCacheOptions {
    fn default() -> Self {
        Self {
            enabled: false,
            entities: DEFAULT_ENTITIES,
            max_ttl: DEFAULT_MAX_TTL,
            redis_url: None,
        }
    }
}

/// One entity: its type and key fields, as written in its Redis key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityId {
    typename: Box<str>,
    /// `<type>:<key fields as a JSON object, sorted by name>`.
    text: Box<str>,
}

impl EntityId {
    /// The entity of `typename` whose key fields are `key`; `None` for an
    /// empty key or one too long to be worth caching.
    pub fn new(typename: &str, key: &serde_json::Map<String, Json>) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        let sorted: BTreeMap<&str, &Json> = key.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let text = format!("{typename}:{}", serde_json::to_string(&sorted).ok()?);
        (text.len() <= MAX_ID_BYTES).then(|| Self {
            typename: typename.into(),
            text: text.into(),
        })
    }

    /// The entity a representation stands for: its `__typename` and its
    /// `keys` fields (every one must be there). `None` for a representation
    /// that carries more (fields a subgraph `@requires`): its answer depends
    /// on them, which the entry would not say, so it is not cached.
    pub fn of_representation(rep: &Value, keys: &[String]) -> Option<Self> {
        let map = rep.as_object()?;
        let typename = map.get("__typename")?.as_str()?;
        if map
            .iter()
            .any(|(k, _)| k.as_str() != "__typename" && !keys.iter().any(|key| key == k.as_str()))
        {
            return None;
        }
        let mut key = serde_json::Map::new();
        for name in keys {
            key.insert(name.clone(), Json::from(map.get(name)?));
        }
        Self::new(typename, &key)
    }

    pub fn typename(&self) -> &str {
        &self.typename
    }

    fn redis_key(&self) -> String {
        format!("grocery:ec:{}", self.text)
    }
}

/// Which answer of an entity: one subgraph's to one fetch (its operation
/// and variables besides the representations).
#[derive(Clone, Debug)]
pub struct Variant {
    subgraph: Box<str>,
    /// `<subgraph>|<hash of the fetch>`.
    prefix: String,
}

impl Variant {
    /// The answers of `subgraph` to `operation` with `variables`.
    pub fn new(subgraph: &str, operation: &str, variables: &crate::value::Map) -> Self {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(operation.as_bytes());
        hash.update([0]);
        let mut vars = Vec::new();
        Value::Object(variables.clone()).write_json(&mut vars);
        hash.update(&vars);
        let digest = hash.finalize();
        let mut prefix = format!("{subgraph}|");
        for byte in &digest[..16] {
            let _ = write!(prefix, "{byte:02x}");
        }
        Self {
            subgraph: subgraph.into(),
            prefix,
        }
    }

    fn field(&self, scope: Scope, user: Option<&str>) -> Option<String> {
        match (scope, user) {
            (Scope::Public, _) => Some(format!("{}|public", self.prefix)),
            (Scope::Private, Some(user)) => Some(format!("{}|user:{user}", self.prefix)),
            (Scope::Private, None) => None,
        }
    }
}

/// What a lookup or a store did, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    Store,
    Invalidated,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Store,
        Outcome::Invalidated,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Store => "store",
            Outcome::Invalidated => "invalidated",
        }
    }
}

/// One kept answer in memory.
struct Kept {
    field: Box<str>,
    deadline_ms: u64,
    value: Value,
}

/// The cache every request of a gateway shares, across supergraph reloads.
pub struct EntityCache {
    options: EntityCacheOptions,
    memory: Mutex<lru::LruCache<EntityId, Vec<Kept>>>,
    redis: Option<ConnectionManager>,
    /// Whether the last Redis call failed (logged once per outage).
    redis_down: AtomicBool,
    counts: Mutex<Counts>,
}

/// Outcomes by subgraph and type.
type Counts = FxHashMap<(Box<str>, Box<str>), [u64; 4]>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EntityCache {
    /// The cache `options` describe, over `redis` (its `redis_url`'s
    /// connection) when given.
    pub fn new(options: &EntityCacheOptions, redis: Option<ConnectionManager>) -> Self {
        let entities = NonZeroUsize::new(options.entities).unwrap_or(NonZeroUsize::MIN);
        Self {
            options: options.clone(),
            memory: Mutex::new(lru::LruCache::new(entities)),
            redis: redis.filter(|_| options.enabled),
            redis_down: AtomicBool::new(false),
            counts: Mutex::default(),
        }
    }

    /// Whether anything is cached at all.
    pub fn enabled(&self) -> bool {
        self.options.enabled
    }

    /// Whether entries go to Redis.
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// The kept answers of `ids` (`None` where an id is `None` or nothing
    /// fits): the public one, else the one kept for `user`.
    pub async fn get(
        &self,
        ids: &[Option<EntityId>],
        variant: &Variant,
        user: Option<&str>,
    ) -> Vec<Option<Value>> {
        let fields: Vec<String> = [Scope::Public, Scope::Private]
            .into_iter()
            .filter_map(|scope| variant.field(scope, user))
            .collect();
        let now = now_ms();
        let found = match self.redis_get(ids, &fields).await {
            Some(found) => found,
            None => {
                let mut memory = lock(&self.memory);
                ids.iter()
                    .map(|id| {
                        let kept = memory.get(id.as_ref()?)?;
                        fields.iter().find_map(|f| {
                            kept.iter()
                                .find(|k| *k.field == **f && k.deadline_ms > now)
                                .map(|k| k.value.clone())
                        })
                    })
                    .collect()
            }
        };
        for (id, value) in ids.iter().zip(&found) {
            if let Some(id) = id {
                let outcome = if value.is_some() {
                    Outcome::Hit
                } else {
                    Outcome::Miss
                };
                self.count(&variant.subgraph, id.typename(), outcome, 1);
            }
        }
        found
    }

    /// Keeps `answers` of `variant` as `policy` allows (`user`: whose request
    /// fetched them, for a private answer; without one it is not kept).
    pub async fn put(
        &self,
        answers: Vec<(EntityId, Value)>,
        variant: &Variant,
        policy: Policy,
        user: Option<&str>,
    ) {
        let Some(field) = variant.field(policy.scope, user) else {
            return;
        };
        let ttl = policy.max_age.min(self.options.max_ttl);
        if answers.is_empty() || ttl.is_zero() {
            return;
        }
        let deadline_ms = now_ms() + ttl.as_millis() as u64;
        let mut kept = Vec::with_capacity(answers.len());
        for (id, value) in answers {
            let mut json = Vec::new();
            value.write_json(&mut json);
            if json.len() <= MAX_VALUE_BYTES {
                kept.push((id, value, json));
            }
        }
        for (id, _, _) in &kept {
            self.count(&variant.subgraph, id.typename(), Outcome::Store, 1);
        }
        if self.redis_put(&kept, &field, deadline_ms).await {
            return;
        }
        let mut memory = lock(&self.memory);
        for (id, value, _) in kept {
            let variants = memory.get_or_insert_mut(id, Vec::new);
            variants.retain(|k| *k.field != *field);
            if variants.len() >= VARIANTS_PER_ENTITY {
                variants.remove(0);
            }
            variants.push(Kept {
                field: field.as_str().into(),
                deadline_ms,
                value,
            });
        }
    }

    /// Drops every subgraph's answers about the entity of `typename` whose
    /// key fields are `key`, in this process and in Redis.
    pub async fn invalidate(&self, typename: &str, key: &serde_json::Map<String, Json>) {
        if !self.enabled() {
            return;
        }
        let Some(id) = EntityId::new(typename, key) else {
            return;
        };
        let dropped = lock(&self.memory).pop(&id).is_some();
        let mut shared = false;
        if let Some(mut redis) = self.redis.clone() {
            match redis::cmd("DEL")
                .arg(id.redis_key())
                .query_async::<usize>(&mut redis)
                .await
            {
                Ok(n) => shared = n > 0,
                Err(err) => self.redis_failed(&err),
            }
        }
        if dropped || shared {
            self.count("all", typename, Outcome::Invalidated, 1);
        }
    }

    /// Drops every entry this process keeps (not Redis's: every replica
    /// drops those itself when it reads the event that asks).
    pub fn clear(&self) {
        lock(&self.memory).clear();
    }

    async fn redis_get(
        &self,
        ids: &[Option<EntityId>],
        fields: &[String],
    ) -> Option<Vec<Option<Value>>> {
        let mut redis = self.redis.clone()?;
        if fields.is_empty() {
            return Some(vec![None; ids.len()]);
        }
        let mut pipe = redis::pipe();
        for id in ids.iter().flatten() {
            pipe.cmd("HMGET").arg(id.redis_key()).arg(fields);
        }
        let replies: Vec<Vec<Option<Vec<u8>>>> = match pipe.query_async(&mut redis).await {
            Ok(replies) => replies,
            Err(err) => {
                self.redis_failed(&err);
                return None;
            }
        };
        self.redis_down.store(false, Ordering::Relaxed);
        let now = now_ms();
        let mut replies = replies.into_iter();
        Some(
            ids.iter()
                .map(|id| {
                    id.as_ref()?;
                    let reply = replies.next()?;
                    reply
                        .into_iter()
                        .flatten()
                        .find_map(|raw| stored(&raw, now))
                })
                .collect(),
        )
    }

    /// Whether Redis took the entries (else they go to memory).
    async fn redis_put(
        &self,
        kept: &[(EntityId, Value, Vec<u8>)],
        field: &str,
        deadline_ms: u64,
    ) -> bool {
        let Some(mut redis) = self.redis.clone() else {
            return false;
        };
        let mut pipe = redis::pipe();
        let expire = self.options.max_ttl.as_secs().max(1);
        for (id, _, json) in kept {
            let mut value = format!("{deadline_ms} ").into_bytes();
            value.extend_from_slice(json);
            let key = id.redis_key();
            pipe.cmd("HSET").arg(&key).arg(field).arg(value).ignore();
            pipe.cmd("EXPIRE").arg(&key).arg(expire).ignore();
        }
        match pipe.query_async::<()>(&mut redis).await {
            Ok(()) => {
                self.redis_down.store(false, Ordering::Relaxed);
                true
            }
            Err(err) => {
                self.redis_failed(&err);
                false
            }
        }
    }

    fn redis_failed(&self, err: &redis::RedisError) {
        if !self.redis_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(%err, "Redis is unavailable for the entity cache; caching in this process until it is back");
        }
    }

    fn count(&self, subgraph: &str, typename: &str, outcome: Outcome, n: u64) {
        let mut counts = lock(&self.counts);
        let key = (Box::from(subgraph), Box::from(typename));
        counts.entry(key).or_default()[outcome as usize] += n;
    }

    /// `grocery_gateway_entity_cache_total`, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP grocery_gateway_entity_cache_total Entity cache lookups (hit, miss), entries \
             stored and entities invalidated (subgraph \"all\"), by subgraph and type.\n\
             # TYPE grocery_gateway_entity_cache_total counter\n",
        );
        let counts = lock(&self.counts);
        let mut rows: Vec<_> = counts.iter().collect();
        rows.sort();
        for ((subgraph, typename), by_outcome) in rows {
            for outcome in Outcome::ALL {
                let n = by_outcome[outcome as usize];
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "grocery_gateway_entity_cache_total{{subgraph=\"{}\",type=\"{}\",outcome=\"{}\"}} {n}",
                        escape(subgraph),
                        escape(typename),
                        outcome.label()
                    );
                }
            }
        }
        out
    }
}

/// A Redis value (`<deadline ms> <JSON>`) still fresh at `now`.
fn stored(raw: &[u8], now: u64) -> Option<Value> {
    let space = raw.iter().position(|&b| b == b' ')?;
    let deadline: u64 = std::str::from_utf8(&raw[..space]).ok()?.parse().ok()?;
    if deadline <= now {
        return None;
    }
    crate::value::read::value(&raw[space + 1..]).ok()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sku: &str) -> serde_json::Map<String, Json> {
        serde_json::json!({ "sku": sku })
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn an_entity_is_its_type_and_key_and_one_with_required_fields_is_not_cached() {
        let rep = Value::from(serde_json::json!({"__typename":"Product","sku":"APPLE"}));
        let id = EntityId::of_representation(&rep, &["sku".into()]).unwrap();
        assert_eq!(id, EntityId::new("Product", &key("APPLE")).unwrap());
        // What a subgraph `@requires` changes its answer: not cached.
        let rep = Value::from(serde_json::json!({"__typename":"Product","sku":"APPLE","weight":3}));
        assert!(EntityId::of_representation(&rep, &["sku".into()]).is_none());
        assert_eq!(id.redis_key(), r#"grocery:ec:Product:{"sku":"APPLE"}"#);
        assert!(EntityId::of_representation(&rep, &["id".into()]).is_none());
        assert!(EntityId::new("Product", &key(&"x".repeat(600))).is_none());
    }

    #[tokio::test]
    async fn memory_entries_are_per_scope_and_dropped_by_invalidation() {
        let options = EntityCacheOptions {
            enabled: true,
            ..Default::default()
        };
        let cache = EntityCache::new(&options, None);
        let vars = crate::value::Map::new();
        let variant = Variant::new("inventory", "query($representations:[_Any!]!){...}", &vars);
        let apple = EntityId::new("Product", &key("APPLE")).unwrap();
        let private = Policy {
            max_age: Duration::from_secs(30),
            scope: Scope::Private,
        };
        cache
            .put(
                vec![(apple.clone(), Value::from("mine"))],
                &variant,
                private,
                Some("u1"),
            )
            .await;
        let ids = [Some(apple.clone())];
        assert_eq!(
            cache.get(&ids, &variant, Some("u1")).await,
            vec![Some(Value::from("mine"))]
        );
        assert_eq!(cache.get(&ids, &variant, Some("u2")).await, vec![None]);
        assert_eq!(cache.get(&ids, &variant, None).await, vec![None]);
        // Never kept for nobody.
        let banana = EntityId::new("Product", &key("BANANA")).unwrap();
        cache
            .put(
                vec![(banana.clone(), Value::from("x"))],
                &variant,
                private,
                None,
            )
            .await;
        assert_eq!(cache.get(&[Some(banana)], &variant, None).await, vec![None]);
        cache.invalidate("Product", &key("APPLE")).await;
        assert_eq!(cache.get(&ids, &variant, Some("u1")).await, vec![None]);
        let metrics = cache.render();
        assert!(metrics.contains(
            r#"grocery_gateway_entity_cache_total{subgraph="all",type="Product",outcome="invalidated"} 1"#
        ), "{metrics}");
        assert!(metrics.contains(
            r#"grocery_gateway_entity_cache_total{subgraph="inventory",type="Product",outcome="hit"} 1"#
        ), "{metrics}");
    }
}
