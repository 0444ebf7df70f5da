DROP TABLE pricing_defaults;
DROP TABLE outbox;
