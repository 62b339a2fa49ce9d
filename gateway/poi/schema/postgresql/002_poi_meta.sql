-- The version of the POIs (docs/poi.md, the index in memory): every commit
-- and delete sets it to a new random value in its own transaction, so a
-- gateway's in-memory index sees a change made through any other gateway
-- on this database by reading one row, at most once a second.
CREATE TABLE poi_meta (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL
);
INSERT INTO poi_meta (id, version) VALUES (1, 0);
