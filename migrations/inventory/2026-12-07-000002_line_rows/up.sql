-- The rows of the arrays that the reservation and the commitment (one
-- statement each, prepared once per connection) take their lines and draws
-- from, estimated at 2 rows whatever the arrays hold.
--
-- Why: with `unnest($n)` and `= ANY($n)` a custom plan knows how long the
-- arrays are and a generic plan does not (it guesses ten or a hundred rows),
-- so the generic plan always looked dearer and PostgreSQL planned the two
-- statements anew on every call: about 0.6 ms each on an idle machine, more
-- than running them. Through these functions both plans see the same
-- estimate, the plan cache keeps the generic plan after five calls, and the
-- plan is the same key lookups either way (see allocation.rs, reservations.rs).
-- PL/pgSQL, so that the planner cannot inline them and see the arrays.
CREATE FUNCTION wanted_lines(skus TEXT[], quantities INT4[])
RETURNS TABLE (sku TEXT, quantity INT4)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE ROWS 2
AS $$ BEGIN RETURN QUERY SELECT * FROM unnest(skus, quantities); END $$;

CREATE FUNCTION priced_lines(skus TEXT[], quantities INT4[], margins NUMERIC[])
RETURNS TABLE (sku TEXT, quantity INT4, margin NUMERIC)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE ROWS 2
AS $$ BEGIN RETURN QUERY SELECT * FROM unnest(skus, quantities, margins); END $$;

CREATE FUNCTION drawn_batches(batch_ids UUID[], skus TEXT[], quantities INT4[], unit_costs NUMERIC[])
RETURNS TABLE (batch_id UUID, sku TEXT, quantity INT4, unit_cost NUMERIC)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE ROWS 2
AS $$ BEGIN RETURN QUERY SELECT * FROM unnest(batch_ids, skus, quantities, unit_costs); END $$;

-- The SKUs of a price or commitment lookup (`sellable_batches_of`), likewise.
CREATE FUNCTION listed_skus(skus TEXT[])
RETURNS SETOF TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE ROWS 2
AS $$ BEGIN RETURN QUERY SELECT * FROM unnest(skus); END $$;
