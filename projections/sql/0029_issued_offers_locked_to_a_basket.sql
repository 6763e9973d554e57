-- A cancelled order releases the reward-store offers locked to its basket
-- (DELETE /v1/carts/{transaction_id}/reservations, IssuedOfferUnlockRequested): the API finds
-- them by the basket, among the few instances locked at any time.
CREATE INDEX member_issued_offers_locked_to ON member_issued_offers (transaction_id)
    WHERE status = 'LOCKED';
