-- pg_trgm stays: other schemas of the database may use it.
DROP TABLE products;
