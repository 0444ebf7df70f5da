-- Every change to what an account may do (role, deactivation, reactivation,
-- logout everywhere, a new password) moves it to the next access epoch.
-- Tokens carry the epoch they were signed in, and every process refuses
-- access tokens of an older epoch than the account's newest. A counter, not a
-- time: the signer reads it under the row lock the change takes, so "signed
-- before the change" needs no clock.
ALTER TABLE users
    ADD COLUMN access_epoch      BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN access_changed_at TIMESTAMPTZ;

-- The list of recent changes every process loads when it starts.
CREATE INDEX users_access_changed_idx ON users (access_changed_at)
    WHERE access_changed_at IS NOT NULL;

-- Domain events (kit::events): user.access_changed, written with the change
-- and relayed to the bus.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_key_idx ON outbox (key, id);
