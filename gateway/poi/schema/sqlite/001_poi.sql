-- Points of interest (issue 11): partner fuel stations, dealers, workshops,
-- car washes, chargers. Positions in 1e-7 degrees (the protocol's unit),
-- so both backends store and compare exact integers.
CREATE TABLE pois (
	rid INTEGER PRIMARY KEY,	-- the spatial index's key
	id TEXT NOT NULL UNIQUE,	-- the partner's id, from the import
	name TEXT NOT NULL,
	category TEXT NOT NULL,
	brand TEXT NOT NULL DEFAULT '',
	address TEXT NOT NULL DEFAULT '',
	lat_e7 INTEGER NOT NULL,
	lon_e7 INTEGER NOT NULL,
	cat_code INTEGER NOT NULL	-- poi_categories.code of category
);

-- The spatial index: an integer R*Tree of the points (a point is a box
-- of zero size) with the category's code as a third dimension, so a query
-- finds position and category in the index alone; kept in step with pois
-- by the triggers below. The category spans [code, code + 1): a box of no
-- volume would make every insertion's growth zero and the tree lose its
-- spatial order (measured: queries 100 times slower).
CREATE VIRTUAL TABLE pois_rtree USING rtree_i32(rid, lat_min, lat_max, lon_min, lon_max,
	cat_min, cat_max);

CREATE TRIGGER pois_rtree_insert AFTER INSERT ON pois BEGIN
	INSERT INTO pois_rtree (rid, lat_min, lat_max, lon_min, lon_max, cat_min, cat_max)
	VALUES (new.rid, new.lat_e7, new.lat_e7, new.lon_e7, new.lon_e7, new.cat_code,
		new.cat_code + 1);
END;

CREATE TRIGGER pois_rtree_update AFTER UPDATE OF lat_e7, lon_e7, cat_code ON pois BEGIN
	UPDATE pois_rtree SET lat_min = new.lat_e7, lat_max = new.lat_e7,
		lon_min = new.lon_e7, lon_max = new.lon_e7, cat_min = new.cat_code,
		cat_max = new.cat_code + 1 WHERE rid = new.rid;
END;

CREATE TRIGGER pois_rtree_delete AFTER DELETE ON pois BEGIN
	DELETE FROM pois_rtree WHERE rid = old.rid;
END;

-- Each category's code, given at the first import that names it and never
-- changed, so a query filters by category inside the index. Small numbers
-- on purpose: a third R*Tree dimension much wider than [code, code + 1)
-- made the tree split by category and lose its spatial order.
CREATE TABLE poi_categories (
	code INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

-- Imports: rows wait in poi_import_rows until the import is committed.
CREATE TABLE poi_imports (
	id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a stale id finds no import
	source TEXT NOT NULL,
	expected_rows INTEGER NOT NULL,
	received_rows INTEGER NOT NULL DEFAULT 0,
	created_ms INTEGER NOT NULL,
	committed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE poi_import_rows (
	import_id INTEGER NOT NULL,
	id TEXT NOT NULL,
	name TEXT NOT NULL,
	category TEXT NOT NULL,
	brand TEXT NOT NULL,
	address TEXT NOT NULL,
	lat_e7 INTEGER NOT NULL,
	lon_e7 INTEGER NOT NULL,
	PRIMARY KEY (import_id, id)
);
