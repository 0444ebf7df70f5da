//! The outbox table: written by producers in their own transactions, read by
//! the relay and by consumers catching up on one key.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{Event, NewEvent};

diesel::table! {
    /// Every producer's `outbox` (found through the connection's `search_path`).
    outbox (id) {
        id -> Int8,
        topic -> Text,
        key -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}

type Row = (i64, String, String, serde_json::Value, DateTime<Utc>);

fn event(source: &str, (id, topic, key, payload, at): Row) -> Event {
    Event {
        id,
        source: source.to_owned(),
        topic,
        key,
        payload,
        at,
    }
}

/// Writes `events` in the caller's transaction.
///
/// One statement of fixed text whatever the number of events (the rows come
/// as three arrays), so PostgreSQL prepares it once per connection: diesel's
/// multi-row insert has a text per row count and is parsed and planned on
/// every call, on every write path of every subgraph.
pub async fn append(conn: &mut AsyncPgConnection, events: &[NewEvent]) -> QueryResult<()> {
    use diesel::sql_types::{Array, Jsonb, Text};
    if events.is_empty() {
        return Ok(());
    }
    let (topics, keys, payloads) = columns(events);
    crate::prepared::prepared(
        "INSERT INTO outbox (topic, key, payload)
         SELECT topic, key, payload
         FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS e(topic, key, payload, n)
         ORDER BY n",
    )
    .bind::<Array<Text>, _>(&topics)
    .bind::<Array<Text>, _>(&keys)
    .bind::<Array<Jsonb>, _>(&payloads)
    .execute(conn)
    .await?;
    Ok(())
}

/// `events` as the three arrays [`append`] binds (topics, keys, payloads), for
/// a statement that writes them along with other rows.
pub fn columns(events: &[NewEvent]) -> (Vec<&str>, Vec<&str>, Vec<&serde_json::Value>) {
    (
        events.iter().map(|e| e.topic).collect(),
        events.iter().map(|e| e.key.as_str()).collect(),
        events.iter().map(|e| &e.payload).collect(),
    )
}

/// Up to `limit` committed, unpublished events, oldest first.
pub async fn pending(
    conn: &mut AsyncPgConnection,
    source: &str,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let rows: Vec<Row> = outbox::table
        .filter(outbox::published_at.is_null())
        .order(outbox::id)
        .limit(limit)
        .select((
            outbox::id,
            outbox::topic,
            outbox::key,
            outbox::payload,
            outbox::created_at,
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| event(source, r)).collect())
}

/// Marks up to `limit` committed, unpublished events published in the
/// caller's transaction and answers them, oldest first: the read and the
/// marks in one statement (one round trip per relay batch fewer than
/// reading, then marking by id). The caller publishes them before it
/// commits; if publishing fails, its rollback takes the marks back.
///
/// Run it only after the relay's lock is taken, in a statement of its own:
/// its snapshot must be newer than the last relay's commit, or it would
/// take rows that relay already published.
pub async fn claim_pending(
    conn: &mut AsyncPgConnection,
    source: &str,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = diesel::sql_types::Int8)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        topic: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        key: String,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        payload: serde_json::Value,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        created_at: DateTime<Utc>,
    }
    // (Prepared like [`append`]: diesel prepares no `UPDATE`.)
    let mut rows: Vec<Claimed> = crate::prepared::prepared(
        "UPDATE outbox SET published_at = now()
         WHERE id IN (SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1)
         RETURNING id, topic, key, payload, created_at",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await?;
    // `RETURNING` keeps no order.
    rows.sort_unstable_by_key(|r| r.id);
    Ok(rows
        .into_iter()
        .map(|r| event(source, (r.id, r.topic, r.key, r.payload, r.created_at)))
        .collect())
}

/// Committed events of `key` after `after` (published or not), in order: how
/// a consumer that fell behind the bus catches up.
pub async fn since(
    conn: &mut AsyncPgConnection,
    source: &str,
    key: &str,
    after: i64,
) -> QueryResult<Vec<Event>> {
    let rows: Vec<Row> = outbox::table
        .filter(outbox::key.eq(key))
        .filter(outbox::id.gt(after))
        .order(outbox::id)
        .select((
            outbox::id,
            outbox::topic,
            outbox::key,
            outbox::payload,
            outbox::created_at,
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| event(source, r)).collect())
}

/// The newest event id of `key` (0 when none): where a new consumer starts.
pub async fn last_id(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<i64> {
    Ok(outbox::table
        .filter(outbox::key.eq(key))
        .select(diesel::dsl::max(outbox::id))
        .first::<Option<i64>>(conn)
        .await?
        .unwrap_or(0))
}

/// Deletes published events older than `keep`; returns how many.
pub async fn prune(conn: &mut AsyncPgConnection, keep: std::time::Duration) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(1));
    diesel::delete(outbox::table.filter(outbox::published_at.lt(cutoff)))
        .execute(conn)
        .await
}
