DROP INDEX allocations_sku_idx;
DROP INDEX reservation_lines_sku_idx;
DROP INDEX batches_sku_received_idx;
