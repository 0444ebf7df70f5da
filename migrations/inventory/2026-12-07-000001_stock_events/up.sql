-- Domain events (`stock.changed`), written in the same statement as every
-- change of an item's counters; the relay publishes them (kit::events).
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

-- The margin of items without their own (DEFAULT_MARGIN), kept where the SQL
-- that prices a `stock.changed` event can read it; `start` writes the
-- configured value. One row.
CREATE TABLE pricing_defaults (
    id             BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    default_margin NUMERIC(6, 4) NOT NULL
);
INSERT INTO pricing_defaults (default_margin) VALUES (0.25);
