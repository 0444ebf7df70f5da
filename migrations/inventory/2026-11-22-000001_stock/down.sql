DROP TABLE stock_movements;
DROP TABLE restocks;
DROP TABLE allocations;
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE batches;
DROP TABLE items;
