DROP FUNCTION listed_skus(TEXT[]);
DROP FUNCTION drawn_batches(UUID[], TEXT[], INT4[], NUMERIC[]);
DROP FUNCTION priced_lines(TEXT[], INT4[], NUMERIC[]);
DROP FUNCTION wanted_lines(TEXT[], INT4[]);
