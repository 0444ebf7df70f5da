DROP TABLE processed_events;
DROP TABLE outbox;
DROP TABLE shipment_status_history;
DROP TABLE shipments;
