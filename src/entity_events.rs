//! Keeps the gateway's entity cache in step with the domain events that say
//! a product changed: inventory's `stock.changed` (availability or price)
//! and catalog's `product.updated`, both keyed by SKU, drop every
//! subgraph's cached answers about that `Product`
//! ([`gateway::entity_cache::EntityCache::invalidate`]).
//!
//! The gateway knows no event bus: the launcher follows kit's bus for it, as
//! it keeps the gateway's access cut-offs filled. Every process reads the
//! whole stream (with Redis, its own `XREAD` cursor, no consumer group), so
//! each gateway replica drops its own memory entries, and the shared Redis
//! ones are dropped by whichever replica comes first.

use std::sync::Arc;

use gateway::entity_cache::EntityCache;
use kit::events::{Bus, BusConfig, Event};
use tokio::{
    sync::{broadcast::error::RecvError, watch},
    task::JoinSet,
};

/// Inventory's event: a product's availability or price changed.
pub const STOCK_CHANGED: &str = "stock.changed";
/// Catalog's event: a product's own fields changed.
pub const PRODUCT_UPDATED: &str = "product.updated";

/// Follows the bus `config` names for `cache` in `tasks` until `stop`, when
/// the cache is on (the bus is connected now: a Redis that is not there
/// fails here). `in_process`: the producers run in this process (`dev`).
pub async fn spawn(
    cache: Arc<EntityCache>,
    config: &BusConfig,
    in_process: bool,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if !cache.enabled() {
        return Ok(());
    }
    if config.redis_url.is_none() && !in_process {
        tracing::warn!(
            "ENTITY_CACHE is on without REDIS_URL: no product event reaches this gateway, \
             cached entities last their max-age"
        );
    }
    let bus = config.connect().await?;
    tasks.spawn(async move {
        tokio::select! {
            () = follow(cache, bus) => anyhow::bail!("the entity cache's event feed ended unexpectedly"),
            _ = stop.wait_for(|s| *s) => Ok(()),
        }
    });
    Ok(())
}

/// Invalidates `cache` for every product event on `bus` until the bus closes.
pub async fn follow(cache: Arc<EntityCache>, bus: Bus) {
    let mut events = bus.subscribe();
    loop {
        match events.recv().await {
            Ok(event) => apply(&cache, &event).await,
            Err(RecvError::Lagged(missed)) => {
                // Which products changed is lost: nothing kept here can be trusted.
                tracing::warn!(
                    missed,
                    "the entity cache fell behind the event bus; emptying this process's entries"
                );
                cache.clear();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Drops what `event` says changed; other topics and events that name no
/// SKU change nothing.
pub async fn apply(cache: &EntityCache, event: &Event) {
    if event.topic != STOCK_CHANGED && event.topic != PRODUCT_UPDATED {
        return;
    }
    match sku(event) {
        Some(sku) => {
            let mut key = serde_json::Map::new();
            key.insert("sku".into(), sku.into());
            cache.invalidate("Product", &key).await;
        }
        None => tracing::warn!(
            id = event.id,
            topic = %event.topic,
            "skipping a product event that names no SKU"
        ),
    }
}

/// The SKU an event names: its payload's `sku`, else its key.
fn sku(event: &Event) -> Option<&str> {
    let sku = match event.payload.get("sku") {
        Some(serde_json::Value::String(sku)) => sku.as_str(),
        _ => event.key.as_str(),
    };
    (!sku.is_empty()).then_some(sku)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gateway::entity_cache::{EntityCacheOptions, EntityId, Policy, Scope, Variant};
    use gateway::value::{Map, Value};
    use serde_json::json;

    use super::*;

    fn event(topic: &str, key: &str, payload: serde_json::Value) -> Event {
        Event {
            id: 1,
            source: "inventory".into(),
            topic: topic.into(),
            key: key.into(),
            payload,
            at: chrono::Utc::now(),
        }
    }

    fn product(sku: &str) -> Option<EntityId> {
        let key = json!({ "sku": sku });
        EntityId::new("Product", key.as_object().unwrap())
    }

    /// A cache (in Redis at `redis_url`, if given) holding APPLE and BANANA
    /// as inventory answered them.
    async fn filled(redis_url: Option<String>) -> (Arc<EntityCache>, Variant) {
        let options = EntityCacheOptions {
            enabled: true,
            redis_url: redis_url.clone(),
            ..Default::default()
        };
        let redis = redis_url.map(|url| gateway::pipeline::replicas::connect(&url).unwrap());
        let cache = Arc::new(EntityCache::new(&options, redis));
        let variant = Variant::new("inventory", "query { _entities }", &Map::new());
        let kept = ["APPLE", "BANANA"]
            .map(|sku| (product(sku).unwrap(), Value::from(sku)))
            .to_vec();
        let policy = Policy {
            max_age: Duration::from_secs(60),
            scope: Scope::Public,
        };
        cache.put(kept, &variant, policy, None).await;
        (cache, variant)
    }

    async fn kept(cache: &EntityCache, variant: &Variant, sku: &str) -> bool {
        cache.get(&[product(sku)], variant, None).await[0].is_some()
    }

    /// Publishes `event` on `bus` and waits until APPLE is gone from `cache`
    /// (BANANA stays).
    async fn drops_apple(cache: &EntityCache, variant: &Variant, bus: &Bus, event: Event) {
        assert!(kept(cache, variant, "APPLE").await);
        bus.publish(&event).await.unwrap();
        kit::testing::wait_until("APPLE dropped", async || {
            !kept(cache, variant, "APPLE").await
        })
        .await;
        assert!(kept(cache, variant, "BANANA").await);
    }

    #[tokio::test]
    async fn stock_and_product_events_drop_the_product_on_the_in_process_bus() {
        for topic in [STOCK_CHANGED, PRODUCT_UPDATED] {
            let bus = Bus::in_process();
            let (cache, variant) = filled(None).await;
            tokio::spawn(follow(cache.clone(), bus.clone()));
            kit::testing::wait_until("following", async || bus.subscribers() > 0).await;
            let payload = json!({ "sku": "APPLE", "available": 3, "unitPrice": "0.38" });
            drops_apple(&cache, &variant, &bus, event(topic, "APPLE", payload)).await;
        }
    }

    #[tokio::test]
    async fn a_product_event_through_redis_drops_the_shared_entry_for_every_replica() {
        let redis = kit::testing::RedisServer::start();
        let stream = format!("grocery:ec-test:{}", uuid::Uuid::new_v4().simple());
        let (one, variant) = filled(Some(redis.url())).await;
        let two = Arc::new(EntityCache::new(
            &EntityCacheOptions {
                enabled: true,
                redis_url: Some(redis.url()),
                ..Default::default()
            },
            Some(gateway::pipeline::replicas::connect(&redis.url()).unwrap()),
        ));
        // The second replica reads what the first kept.
        assert!(kept(&two, &variant, "APPLE").await);
        let bus = Bus::redis(&redis.url(), &stream).await.unwrap();
        let followed = Bus::redis(&redis.url(), &stream).await.unwrap();
        tokio::spawn(follow(two.clone(), followed.clone()));
        kit::testing::wait_until("following", async || followed.subscribers() > 0).await;
        let payload = json!({ "sku": "APPLE" });
        drops_apple(
            &one,
            &variant,
            &bus,
            event(PRODUCT_UPDATED, "APPLE", payload),
        )
        .await;
    }

    /// Hostile events: wrong topic, wrong types, empty, huge, deep,
    /// repeated, NUL. None drops anything but the product it names; none
    /// stops the feed.
    #[tokio::test]
    async fn hostile_events_drop_nothing_else_and_the_feed_carries_on() {
        let bus = Bus::in_process();
        let (cache, variant) = filled(None).await;
        tokio::spawn(follow(cache.clone(), bus.clone()));
        kit::testing::wait_until("following", async || bus.subscribers() > 0).await;
        // As deep as serde_json reads from Redis (it refuses past 128 levels).
        let mut deep = json!("BANANA");
        for _ in 0..120 {
            deep = json!({ "sku": deep });
        }
        let hostile = [
            event("order.status_changed", "BANANA", json!({ "sku": "BANANA" })),
            event(STOCK_CHANGED, "", json!({})),
            event(STOCK_CHANGED, "", json!({ "sku": 42 })),
            event(STOCK_CHANGED, "", json!({ "sku": ["BANANA"] })),
            event(STOCK_CHANGED, "", json!({ "sku": null })),
            event(STOCK_CHANGED, "", json!("BANANA")),
            event(PRODUCT_UPDATED, "", deep),
            event(PRODUCT_UPDATED, &"B".repeat(1 << 20), json!({})),
            event(PRODUCT_UPDATED, "BAN\0ANA", json!({ "sku": "BAN\0ANA" })),
        ];
        for e in &hostile {
            bus.publish(e).await.unwrap();
        }
        for _ in 0..100 {
            bus.publish(&hostile[0]).await.unwrap();
        }
        // A well-formed event after them is still applied, and only it.
        let payload = json!({ "sku": "APPLE" });
        drops_apple(
            &cache,
            &variant,
            &bus,
            event(STOCK_CHANGED, "ignored", payload),
        )
        .await;
    }
}
