-- The sample's one table: a row for each call of /api/db, whose id numbers the visits.
-- Applied once per release by `pyserve migrate` (yoyo-migrations); `make lint` runs squawk on it first.
CREATE TABLE visits (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    visited_at timestamptz NOT NULL DEFAULT now()
);
