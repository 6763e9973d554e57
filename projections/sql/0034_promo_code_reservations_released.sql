-- A reservation given back before any purchase used it (PromoCodeUnreserved: the till
-- cancelled the basket) counts no more from then, for the code's status and uses left and for
-- the member's other baskets, rather than until it would have lapsed. Asking again for the
-- basket clears it.
ALTER TABLE promo_code_reservations ADD COLUMN released_at timestamptz;
COMMENT ON COLUMN promo_code_reservations.released_at IS
    'When the reservation was released unused (PromoCodeUnreserved); null while it holds. '
    'Asking again for the basket after a release clears it.';
COMMENT ON TABLE promo_code_reservations IS
    'One row per (code, basket) the promotion''s agent reserved (PromoCodeReserved): first '
    'reserved_at, latest reserved_until, released_at once given back (PromoCodeUnreserved); '
    'a committed one has its row in promo_code_uses.';

-- The live reservations of a promotion are counted for its codes' status and the till's
-- preview (uses left, the member's): found by promotion, not by a scan of every basket's.
CREATE INDEX promo_code_reservations_by_promotion
    ON promo_code_reservations (promotion_id, reserved_until);
