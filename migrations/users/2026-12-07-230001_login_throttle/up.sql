-- Login failures per account and per client address, shared by every replica
-- of the users subgraph (see subgraphs/users/src/throttle.rs).
CREATE TABLE login_throttle (
    -- 'account:<device id>' or 'address:<ip>'; unknown device ids count too,
    -- so throttling tells nothing about which accounts exist.
    key TEXT PRIMARY KEY,
    -- Attempts counted in the current window: failures, and attempts still
    -- being checked (a success takes its own back).
    failures INTEGER NOT NULL,
    -- When the last attempt was counted; the next one waits from here, and a
    -- quiet window starts the count over.
    last_at TIMESTAMPTZ NOT NULL
);

-- Stale rows are pruned by age.
CREATE INDEX login_throttle_last_at ON login_throttle (last_at);
