-- Order numbers people can read out: GR-000123, from a sequence.
CREATE SEQUENCE order_number_seq;
CREATE FUNCTION next_order_number() RETURNS TEXT LANGUAGE sql AS $$
    SELECT 'GR-' || lpad(n::text, greatest(6, length(n::text)), '0')
    FROM (SELECT nextval('order_number_seq') AS n) s
$$;

-- One row per order. Amounts are estimates while RESERVED (inventory's quote)
-- and the committed prices from CONFIRMED on. Only lifecycle.rs changes status,
-- always together with an order_status_history row and an outbox row.
CREATE TABLE orders (
    id                UUID PRIMARY KEY,
    number            TEXT NOT NULL DEFAULT next_order_number(),
    customer_id       UUID NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('RESERVED', 'CONFIRMED', 'PROCESSING',
                          'SHIPPED', 'DELIVERED', 'CANCELLED', 'EXPIRED', 'PAYMENT_FAILED')),
    subtotal          NUMERIC(14, 2),
    tax               NUMERIC(14, 2),
    shipping_cost     NUMERIC(14, 2),
    total             NUMERIC(14, 2),
    reserved_until    TIMESTAMPTZ,
    confirmed_at      TIMESTAMPTZ,
    -- Who the order was for at confirmation: contact and addresses (JSON), and their notes.
    customer_snapshot JSONB,
    notes             TEXT,
    cancel_reason     TEXT,
    -- Lines came from the cart: confirming removes them from it.
    from_cart         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX orders_number_key ON orders (number);
-- Listings: a customer's orders and the admin's, newest first (ids are UUIDv7).
CREATE INDEX orders_customer_idx ON orders (customer_id, id DESC);
CREATE INDEX orders_status_idx ON orders (status, id DESC);
-- The expiry sweeper's work list.
CREATE INDEX orders_due_idx ON orders (reserved_until) WHERE status = 'RESERVED';

CREATE TABLE order_items (
    order_id     UUID NOT NULL REFERENCES orders (id),
    sku          TEXT NOT NULL,
    quantity     INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price   NUMERIC(14, 2),
    line_total   NUMERIC(14, 2),
    -- The product's name when the order was confirmed (catalog may rename it later).
    product_name TEXT,
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE order_status_history (
    id          BIGSERIAL PRIMARY KEY,
    order_id    UUID NOT NULL REFERENCES orders (id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT,
    actor_id    UUID,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);

-- At most one payment per order: the primary key is what makes a second charge
-- impossible to record, whatever races above it.
CREATE TABLE payments (
    order_id           UUID PRIMARY KEY REFERENCES orders (id),
    status             TEXT NOT NULL CHECK (status IN ('SUCCEEDED', 'FAILED', 'REFUNDED')),
    amount             NUMERIC(14, 2) NOT NULL CHECK (amount >= 0),
    provider           TEXT NOT NULL,
    method             TEXT,
    provider_reference TEXT,
    failure_reason     TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Refunds of a payment; one full refund per order.
CREATE TABLE refunds (
    order_id           UUID PRIMARY KEY REFERENCES payments (order_id),
    amount             NUMERIC(14, 2) NOT NULL,
    provider_reference TEXT NOT NULL,
    reason             TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- confirmOrder idempotency keys, per customer: a repeat answers the same order.
CREATE TABLE confirmation_keys (
    customer_id UUID NOT NULL,
    key         TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    order_id    UUID NOT NULL REFERENCES orders (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, key)
);

CREATE TABLE cart_lines (
    customer_id UUID NOT NULL,
    sku         TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, sku)
);

-- Domain events (kit::events): written with the change, relayed to the bus.
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
