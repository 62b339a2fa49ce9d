-- Points of interest (issue 11): partner fuel stations, dealers, workshops,
-- car washes, chargers. Positions in 1e-7 degrees (the protocol's unit),
-- so both backends store and compare exact integers.
CREATE TABLE pois (
	rid BIGSERIAL PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,	-- the partner's id, from the import
	name TEXT NOT NULL,
	category TEXT NOT NULL,
	brand TEXT NOT NULL DEFAULT '',
	address TEXT NOT NULL DEFAULT '',
	lat_e7 INTEGER NOT NULL,
	lon_e7 INTEGER NOT NULL,
	cat_code INTEGER NOT NULL	-- poi_categories.code of category
);

-- The spatial index: GiST over the point (x = longitude, y = latitude, in
-- 1e-7 degrees), which answers `point <@ box` (plain PostgreSQL, no
-- extension). The near query writes the same expression.
CREATE INDEX pois_position ON pois USING gist (point(lon_e7::float8, lat_e7::float8));

-- Each category's code, given at the first import that names it and never
-- changed, so a query filters by category inside the index. Small numbers
-- on purpose: a third R*Tree dimension much wider than [code, code + 1)
-- made the tree split by category and lose its spatial order.
CREATE TABLE poi_categories (
	code BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

-- Imports: rows wait in poi_import_rows until the import is committed.
CREATE TABLE poi_imports (
	id BIGSERIAL PRIMARY KEY,
	source TEXT NOT NULL,
	expected_rows BIGINT NOT NULL,
	received_rows BIGINT NOT NULL DEFAULT 0,
	created_ms BIGINT NOT NULL,
	committed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE poi_import_rows (
	import_id BIGINT NOT NULL,
	id TEXT NOT NULL,
	name TEXT NOT NULL,
	category TEXT NOT NULL,
	brand TEXT NOT NULL,
	address TEXT NOT NULL,
	lat_e7 INTEGER NOT NULL,
	lon_e7 INTEGER NOT NULL,
	PRIMARY KEY (import_id, id)
);
