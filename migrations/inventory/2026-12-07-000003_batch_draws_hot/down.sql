ALTER TABLE batches RESET (fillfactor);
DROP INDEX batches_fefo_idx;
ALTER TABLE batches DROP COLUMN sold_out;
CREATE INDEX batches_fefo_idx ON batches (sku, expiry_date NULLS LAST, received_at, id)
    WHERE remaining > 0;
