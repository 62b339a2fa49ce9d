-- The version of the POIs (docs/poi.md "In memory"): every import commit
-- and delete bumps it in its own transaction, so a gateway's in-memory
-- index sees a change made through any other gateway on this database by
-- reading one row, at most once a second.
CREATE TABLE poi_meta (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO poi_meta (id, version) VALUES (1, 0);
