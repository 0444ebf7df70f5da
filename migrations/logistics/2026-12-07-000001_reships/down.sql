DELETE FROM shipment_status_history
    WHERE shipment_id IN (SELECT id FROM shipments WHERE attempt > 1);
DELETE FROM shipments WHERE attempt > 1;
ALTER TABLE shipments DROP CONSTRAINT shipments_order_attempt_key;
ALTER TABLE shipments ADD CONSTRAINT shipments_order_id_key UNIQUE (order_id);
ALTER TABLE shipments DROP COLUMN attempt;
