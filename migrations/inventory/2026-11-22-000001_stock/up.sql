-- Stockable products (registered by catalog), their margin override and the
-- two counters every reservation decision reads under the row lock:
--   on_hand  = Σ batches.remaining            (all batches, expired or not)
--   reserved = Σ quantities of ACTIVE reservations
-- Both only change together with a stock_movements row.
CREATE TABLE items (
    sku        TEXT PRIMARY KEY CHECK (sku ~ '^[A-Z0-9_-]{1,32}$'),
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    margin     NUMERIC(8, 4) CHECK (margin >= 0 AND margin <= 10),
    on_hand    INTEGER NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved   INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One delivery of one product: what it cost and when it expires.
CREATE TABLE batches (
    id             UUID PRIMARY KEY,
    sku            TEXT NOT NULL REFERENCES items (sku),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    remaining      INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= quantity),
    unit_cost      NUMERIC(14, 4) NOT NULL CHECK (unit_cost >= 0),
    mfd_date       DATE,
    expiry_date    DATE,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    supplier_id    TEXT,
    truck_id       TEXT,
    transaction_id TEXT,
    CHECK (mfd_date IS NULL OR expiry_date IS NULL OR expiry_date > mfd_date)
);
-- First-expiry-first-out walk over batches that still hold units.
CREATE INDEX batches_fefo_idx ON batches (sku, expiry_date NULLS LAST, received_at, id)
    WHERE remaining > 0;

-- Stock held for an order; the order id is the idempotency key of every call.
CREATE TABLE reservations (
    order_id   UUID PRIMARY KEY,
    status     TEXT NOT NULL
               CHECK (status IN ('ACTIVE', 'RELEASED', 'EXPIRED', 'COMMITTED', 'RETURNED')),
    expires_at TIMESTAMPTZ NOT NULL,
    -- The CommitStock answer, returned again on repeats.
    commitment JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX reservations_due_idx ON reservations (expires_at) WHERE status = 'ACTIVE';

CREATE TABLE reservation_lines (
    order_id UUID NOT NULL REFERENCES reservations (order_id),
    sku      TEXT NOT NULL REFERENCES items (sku),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);

-- Which batches a committed order drew from, so a return puts units back.
CREATE TABLE allocations (
    order_id  UUID NOT NULL REFERENCES reservations (order_id),
    batch_id  UUID NOT NULL REFERENCES batches (id),
    sku       TEXT NOT NULL REFERENCES items (sku),
    quantity  INTEGER NOT NULL CHECK (quantity > 0),
    unit_cost NUMERIC(14, 4) NOT NULL,
    PRIMARY KEY (order_id, batch_id)
);

-- Deliveries received; the transaction id is the idempotency key.
CREATE TABLE restocks (
    transaction_id TEXT PRIMARY KEY,
    truck_id       TEXT NOT NULL,
    supplier_id    TEXT NOT NULL,
    receipt        JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The ledger: every movement of stock is a row.
CREATE TABLE stock_movements (
    id             BIGSERIAL PRIMARY KEY,
    sku            TEXT NOT NULL REFERENCES items (sku),
    kind           TEXT NOT NULL CHECK (kind IN ('RESTOCK', 'RESERVE', 'RELEASE', 'EXPIRE_RESERVATION',
                                                 'COMMIT', 'RETURN', 'ADJUSTMENT', 'EXPIRY')),
    on_hand_delta  INTEGER NOT NULL,
    reserved_delta INTEGER NOT NULL,
    batch_id       UUID REFERENCES batches (id),
    reference      TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_sku_idx ON stock_movements (sku, id);
