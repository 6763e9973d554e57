-- The till's lock and immediate redeem of an issued reward-store offer
-- (POST /v1/members/{id}/issued-offers/{issued_offer_id}/lock and .../redeem,
-- docs/adr/0033-reward-store-api.md) keep their Idempotency-Keys with the other member requests
-- the API answers with the worker's decision (migrations 0014, 0022).
ALTER TABLE member_service_requests DROP CONSTRAINT member_service_requests_kind_check;
ALTER TABLE member_service_requests ADD CONSTRAINT member_service_requests_kind_check
    CHECK (kind IN ('ENROLMENT', 'PREFERENCES_CHANGE', 'REWARD_STORE_OFFER_PURCHASE',
                    'ISSUED_OFFER_LOCK', 'ISSUED_OFFER_REDEEM'));
