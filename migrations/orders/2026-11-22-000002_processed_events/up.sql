-- Events orders has consumed (shipment.status_changed from logistics), one row
-- per consumer group and event: written in the same transaction as the
-- event's effect, so a redelivered event changes nothing.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    source       TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source, event_id)
);
