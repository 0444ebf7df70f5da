-- Accounts of people, fridges, trucks, partners and admins.
CREATE TABLE users (
    id                   UUID PRIMARY KEY,
    device_id            TEXT NOT NULL CHECK (length(device_id) BETWEEN 1 AND 50),
    email                TEXT,
    phone                TEXT,
    role                 TEXT NOT NULL DEFAULT 'CUSTOMER'
                         CHECK (role IN ('CUSTOMER', 'TRUCK', 'PARTNER', 'ADMIN')),
    password_hash        TEXT NOT NULL,
    active               BOOLEAN NOT NULL DEFAULT TRUE,
    shipping_address     JSONB,
    billing_address      JSONB,
    payment_method_token TEXT,
    payment_method_label TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Uniqueness is enforced here, not by checking first, so concurrent
-- registrations cannot both win.
CREATE UNIQUE INDEX users_device_id_key ON users (device_id);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One row per refresh token ever issued. A token is good once: using it sets
-- used_at; presenting it again revokes its whole family (every token rotated
-- from the same login).
CREATE TABLE refresh_tokens (
    jti        UUID PRIMARY KEY,
    family_id  UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_live_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
