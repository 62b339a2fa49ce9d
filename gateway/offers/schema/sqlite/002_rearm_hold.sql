-- An open episode closes only after the level that re-arms it has held
-- for a while (gateway time): since when it has, NULL while it has not.
-- A car swinging its fuel reading up and down cannot collect an offer per
-- swing.
ALTER TABLE offer_episodes ADD COLUMN high_since_ms INTEGER;
