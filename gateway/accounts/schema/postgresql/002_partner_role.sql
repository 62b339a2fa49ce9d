-- The partner role (docs/accounts.md): a partner's point of sale may only
-- redeem promo codes.
ALTER TABLE users DROP CONSTRAINT users_role_check,
  ADD CONSTRAINT users_role_check
    CHECK (role IN ('operator', 'fleet_manager', 'service_advisor', 'partner'));
