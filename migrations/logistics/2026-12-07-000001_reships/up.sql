-- An order whose delivery failed can be reshipped: one shipment per delivery
-- attempt (1, then one more per reship, as orders' CONFIRMED event says), the
-- failed ones kept with their history. Order.shipment is the latest attempt.
ALTER TABLE shipments ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1);
ALTER TABLE shipments DROP CONSTRAINT shipments_order_id_key;
ALTER TABLE shipments ADD CONSTRAINT shipments_order_attempt_key UNIQUE (order_id, attempt);
