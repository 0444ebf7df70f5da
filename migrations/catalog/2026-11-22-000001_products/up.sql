-- Products: what the grocery sells (or once sold). Rules are checked in Rust
-- with messages for people; the CHECKs below only keep bad rows out of the
-- table if something bypasses the subgraph.

-- Trigram matching makes `lower(name) LIKE '%…%'` an index lookup. The
-- extension lives in `public`, shared by every schema of the database.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- SKUs sort byte-wise (COLLATE "C"): listing order and cursors do not depend
-- on the server's locale.
CREATE TABLE products (
    sku         TEXT COLLATE "C" PRIMARY KEY CHECK (sku ~ '^[A-Z0-9_-]{1,32}$'),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description TEXT CHECK (char_length(description) <= 5000),
    upc         TEXT CHECK (upc ~ '^([0-9]{12}|[0-9]{13})$'),
    image_urls  TEXT[] NOT NULL DEFAULT '{}'
                CHECK (cardinality(image_urls) <= 20 AND array_position(image_urls, NULL) IS NULL),
    category    TEXT CHECK (char_length(category) BETWEEN 1 AND 100),
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    metadata    JSONB CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Uniqueness is enforced here, not by checking first, so concurrent creates
-- and renames cannot both win.
CREATE UNIQUE INDEX products_name_key ON products (lower(name));
CREATE UNIQUE INDEX products_upc_key ON products (upc);

CREATE INDEX products_name_trgm_idx ON products USING gin (lower(name) public.gin_trgm_ops);
CREATE INDEX products_category_idx ON products (lower(category), sku);
