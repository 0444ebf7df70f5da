//! Filling access cut-offs: every replica sees every access change, through
//! Redis and through the in-process bus, and a table that cannot load its
//! list keeps refusing until it can.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use kit::{
    auth::{
        AccessChange, Claims, Revocations, Role, TokenError, TokenSettings, TokenType,
        revocation::ACCESS_CHANGED,
        revocation_feed::{Source, follow},
    },
    events::{Bus, Event},
    testing::{RedisServer, eventually_within},
};
use uuid::Uuid;

fn token(user: Uuid, epoch: i64) -> Claims {
    let settings = TokenSettings::default();
    let now = Utc::now().timestamp();
    Claims {
        iss: settings.issuer,
        aud: settings.audience,
        sub: user,
        role: Role::Admin.into(),
        exp: now + 900,
        iat: now,
        token_type: TokenType::Access,
        jti: Uuid::new_v4(),
        fam: None,
        access_epoch: epoch,
    }
}

fn event(id: i64, user: Uuid, epoch: i64) -> Event {
    let at = Utc::now();
    let change = AccessChange {
        user,
        epoch,
        at,
        until: at + chrono::Duration::minutes(16),
        role: Role::Customer.into(),
        active: true,
    };
    Event {
        id,
        source: "users".into(),
        topic: ACCESS_CHANGED.into(),
        key: user.to_string(),
        payload: serde_json::to_value(change).unwrap(),
        at,
    }
}

fn empty_list() -> Source {
    Source::Local(Box::new(|| Box::pin(async { Ok(Vec::new()) })))
}

/// Waits until `table` refuses `claims` as revoked; how long that took (at most 1 s).
async fn until_revoked(table: &Revocations, claims: &Claims) -> Duration {
    let started = Instant::now();
    eventually_within(
        Duration::from_secs(1),
        "the token revoked",
        async || match table.check(claims) {
            Err(TokenError::Revoked) => Ok(()),
            other => Err(other),
        },
    )
    .await;
    started.elapsed()
}

/// Two processes' tables, each following its own bus.
async fn replicas(buses: [Bus; 2]) -> Vec<Revocations> {
    let mut tables = Vec::new();
    for bus in buses {
        let table = Revocations::new();
        tokio::spawn(follow(table.clone(), bus, empty_list()));
        table.primed().await;
        tables.push(table);
    }
    tables
}

#[tokio::test]
async fn every_replica_sees_every_access_change_through_redis() {
    let redis = RedisServer::start();
    let stream = format!("grocery:cutoffs:{}", Uuid::new_v4().simple());
    let tables = replicas([
        Bus::redis(&redis.url(), &stream).await.unwrap(),
        Bus::redis(&redis.url(), &stream).await.unwrap(),
    ])
    .await;
    let publisher = Bus::redis(&redis.url(), &stream).await.unwrap();
    let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
    let published = Instant::now();
    publisher.publish(&event(1, user, 1)).await.unwrap();
    for table in &tables {
        until_revoked(table, &token(user, 0)).await;
        eprintln!(
            "redis: publish → a replica refuses: {:?}",
            published.elapsed()
        );
        assert_eq!(table.check(&token(user, 1)), Ok(()));
        assert_eq!(table.check(&token(other, 0)), Ok(()));
    }
    // Other topics on the same stream are not access changes.
    let mut unrelated = event(2, other, 1);
    unrelated.topic = "order.status_changed".into();
    publisher.publish(&unrelated).await.unwrap();
    publisher.publish(&event(3, user, 2)).await.unwrap();
    for table in &tables {
        until_revoked(table, &token(user, 1)).await;
        assert_eq!(table.check(&token(other, 0)), Ok(()));
    }
}

#[tokio::test]
async fn every_component_of_one_process_sees_it_through_the_in_process_bus() {
    let stream = format!("cutoffs-{}", Uuid::new_v4().simple());
    let tables = replicas([
        Bus::shared_in_process(&stream),
        Bus::shared_in_process(&stream),
    ])
    .await;
    let user = Uuid::new_v4();
    Bus::shared_in_process(&stream)
        .publish(&event(1, user, 1))
        .await
        .unwrap();
    for table in &tables {
        until_revoked(table, &token(user, 0)).await;
    }
}

#[tokio::test]
async fn a_table_refuses_until_its_list_loads_and_then_holds_the_list() {
    let user = Uuid::new_v4();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let source = Source::Local(Box::new(move || {
        let attempt = counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            anyhow::ensure!(attempt >= 2, "users is not up yet");
            let change: AccessChange = serde_json::from_value(event(1, user, 1).payload)?;
            Ok(vec![change])
        })
    }));
    let table = Revocations::new();
    tokio::spawn(follow(table.clone(), Bus::in_process(), source));
    assert_eq!(
        table.check(&token(user, 5)),
        Err(TokenError::CutoffsUnknown)
    );
    tokio::time::timeout(Duration::from_secs(5), table.primed())
        .await
        .expect("loaded after the failed tries");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(table.check(&token(user, 0)), Err(TokenError::Revoked));
    assert_eq!(table.check(&token(user, 1)), Ok(()));
}
