DROP TABLE outbox;
DROP INDEX users_access_changed_idx;
ALTER TABLE users DROP COLUMN access_changed_at, DROP COLUMN access_epoch;
