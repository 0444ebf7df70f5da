-- A draw from a batch (remaining − n) as a HOT update: no new entry in any
-- of the batches' three indexes, no dead one left in the FEFO index.
--
-- Why: the FEFO index was partial on `remaining > 0`, and a column in an
-- index predicate counts as indexed, so every draw (each commitment, each
-- line) wrote a new heap tuple and three index entries, and the hot SKU's
-- batch filled the FEFO index with dead entries that every sellable-batch
-- walk stepped over. Now the predicate reads `sold_out`, which changes once
-- in a batch's life (the draw that empties it), and the table keeps room on
-- its pages for the new versions.
ALTER TABLE batches ADD COLUMN sold_out BOOLEAN GENERATED ALWAYS AS (remaining = 0) STORED;
DROP INDEX batches_fefo_idx;
CREATE INDEX batches_fefo_idx ON batches (sku, expiry_date NULLS LAST, received_at, id)
    WHERE NOT sold_out;
ALTER TABLE batches SET (fillfactor = 80);
