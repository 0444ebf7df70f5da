-- An order whose delivery failed can be refunded (orders' REFUNDED status).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN ('ORDER_CONFIRMED',
    'ORDER_SHIPPED', 'ORDER_DELIVERED', 'ORDER_CANCELLED', 'PAYMENT_FAILED', 'SHIPMENT_FAILED',
    'ORDER_REFUNDED'));
