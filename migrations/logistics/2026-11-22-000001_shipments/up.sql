-- Shipments: one per paid order, created by the logistics.shipments consumer
-- of order.status_changed, moved by trucks. Every change is a history row and
-- an outbox row (shipment.status_changed) in the same transaction.
CREATE TABLE shipments (
    id          UUID PRIMARY KEY,
    order_id    UUID NOT NULL UNIQUE,
    customer_id UUID NOT NULL,
    tracking_id TEXT NOT NULL UNIQUE,
    carrier     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                  ('CREATED', 'PICKED', 'IN_TRANSIT', 'DELIVERED', 'FAILED', 'CANCELLED')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE shipment_status_history (
    id          BIGSERIAL PRIMARY KEY,
    shipment_id UUID NOT NULL REFERENCES shipments (id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor_id    UUID,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX shipment_status_history_shipment_idx ON shipment_status_history (shipment_id, id);

-- kit::events: the outbox this subgraph's relay publishes.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_key_idx ON outbox (key, id);

-- kit::events: events this subgraph's consumers applied.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source, event_id)
);
