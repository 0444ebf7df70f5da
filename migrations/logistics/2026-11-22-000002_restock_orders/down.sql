DROP TABLE restock_orders;
