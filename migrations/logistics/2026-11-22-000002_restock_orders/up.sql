-- Restocks: a truck's delivery, recorded before inventory is asked to take it
-- (RestockItems, keyed by this row's id), so an unreachable inventory loses
-- nothing: the row stays PENDING and the reconciler retries it with backoff
-- until it is COMPLETED, or FAILED after a permanent refusal or too many tries.
CREATE TABLE restock_orders (
    id              UUID PRIMARY KEY,           -- the transaction id inventory sees
    truck_id        TEXT NOT NULL,
    supplier_id     TEXT NOT NULL,
    lines           JSONB NOT NULL,             -- [{ sku, quantity, unitCost, mfdDate, expiryDate }]
    requested_by    UUID NOT NULL,
    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    status          TEXT NOT NULL DEFAULT 'PENDING'
                      CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED')),
    attempts        INT NOT NULL DEFAULT 0,
    last_error      TEXT,
    units           INT,                        -- what inventory received, once COMPLETED
    -- When the reconciler may try next; pushed ahead while an attempt is in flight.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at    TIMESTAMPTZ,
    -- One restock per requester and key (NULL keys never collide).
    CONSTRAINT restock_orders_requester_key UNIQUE (requested_by, idempotency_key)
);
CREATE INDEX restock_orders_due_idx ON restock_orders (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX restock_orders_requester_idx ON restock_orders (requested_by, id);
CREATE INDEX restock_orders_truck_idx ON restock_orders (truck_id, id);
