-- Deliveries that fail: a paid order whose shipment failed is DELIVERY_FAILED
-- until an ADMIN reships it (back to CONFIRMED, the next delivery attempt) or
-- refunds it (REFUNDED, the goods RETURNED to stock or LOST and written off).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ('RESERVED', 'CONFIRMED',
    'PROCESSING', 'SHIPPED', 'DELIVERED', 'CANCELLED', 'EXPIRED', 'PAYMENT_FAILED',
    'DELIVERY_FAILED', 'REFUNDED'));
-- What became of the goods when a failed delivery was refunded (none for a cancellation):
-- RETURNED went back to inventory, LOST are written off here and never restocked.
ALTER TABLE refunds ADD COLUMN goods TEXT CHECK (goods IN ('RETURNED', 'LOST'));
