-- Lookups by SKU that the partial FEFO index does not serve: the admin batch
-- list and adjustments (every batch ever received), and the foreign-key checks
-- when an untouched item is deleted.
CREATE INDEX batches_sku_received_idx ON batches (sku, received_at DESC, id DESC);
CREATE INDEX reservation_lines_sku_idx ON reservation_lines (sku);
CREATE INDEX allocations_sku_idx ON allocations (sku);
