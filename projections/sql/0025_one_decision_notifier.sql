-- One notifier for every table a waiting request watches: 0017 could not call 0018's
-- notify_decided() and carried a copy of it for offer_use_reservations; the copy goes.
DROP TRIGGER offer_use_reservations_decided ON offer_use_reservations;
DROP FUNCTION notify_offer_use_reservation_answered();
CREATE TRIGGER offer_use_reservations_decided AFTER INSERT ON offer_use_reservations
    FOR EACH ROW EXECUTE FUNCTION notify_decided('member', 'member_id');
