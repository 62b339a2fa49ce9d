-- The promotion rule that issued an offer ('' for offers from before rules,
-- and for those no rule made): what the per-rule statistics group by.
ALTER TABLE offers ADD COLUMN rule TEXT NOT NULL DEFAULT '';
CREATE INDEX offers_by_rule ON offers (rule, created_ms);
