-- The till's preview of a member's cart reads the member's reservations of codes that unlock
-- an offer: each holds the offer's use for its basket, refusing the member's other baskets
-- while it lasts (docs/adr/0037-codes-that-unlock-an-offer.md, item 5). Found by member, among
-- the reservations kept a week after they lapse.
CREATE INDEX promo_code_reservations_by_member ON promo_code_reservations (member_id, reserved_until)
    WHERE member_id IS NOT NULL;
