-- What users are told about their orders and shipments. Each row comes from
-- one event (source + event_id), at most once per user. EMAIL ones are sent
-- by the mailer to the user's address as it is at sending time; STORED ones
-- are only kept (no address, or no SMTP configured).
CREATE TABLE notifications (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source          TEXT NOT NULL,
    event_id        BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('ORDER_CONFIRMED', 'ORDER_SHIPPED',
                        'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'SHIPMENT_FAILED')),
    order_id        UUID,
    order_number    TEXT,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('EMAIL', 'NONE')),
    delivery        TEXT NOT NULL CHECK (delivery IN ('PENDING', 'SENT', 'FAILED', 'STORED')),
    attempts        INT NOT NULL DEFAULT 0,
    -- When the mailer may (next) try; set exactly while PENDING.
    next_attempt_at TIMESTAMPTZ,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, source, event_id),
    CHECK ((channel = 'EMAIL') = (delivery <> 'STORED')),
    CHECK ((delivery = 'PENDING') = (next_attempt_at IS NOT NULL))
);

-- A user's notifications newest first (ids are UUIDv7, so id order is creation order).
CREATE INDEX notifications_user_idx ON notifications (user_id, id);
-- The mailer's scan for due mail.
CREATE INDEX notifications_pending_idx ON notifications (next_attempt_at) WHERE delivery = 'PENDING';

-- Events this subgraph has consumed (order.status_changed, shipment.status_changed),
-- one row per consumer group and event: written in the same transaction as the
-- event's effect, so a redelivered event changes nothing.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source, event_id)
);
