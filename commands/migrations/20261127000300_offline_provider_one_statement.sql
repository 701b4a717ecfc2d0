-- The durable offline provider (commands::payments::OfflineProvider::durable) applies
-- an operation on one intent in one statement: the intent changes from the state the
-- operation was decided on (compare-and-set) and the idempotency key records its
-- response, both or neither. 'changed': the intent moved on meanwhile (nothing
-- written; decide again); 'key_taken': a concurrent call with the same key stored its
-- response first (nothing written; replay it); 'applied'.
CREATE OR REPLACE FUNCTION offline_payment_apply(
    p_intent   text,
    p_key      text,
    p_request  jsonb,
    p_response jsonb,
    p_old      jsonb,
    p_new      jsonb
) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE offline_payment_intents
       SET state = p_new, updated_at = now()
     WHERE intent_id = p_intent AND state = p_old;
    IF NOT FOUND THEN
        RETURN 'changed';
    END IF;
    INSERT INTO offline_payment_idempotency (key, request, response)
    VALUES (p_key, p_request, p_response)
    ON CONFLICT (key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'key_taken';
    END IF;
    RETURN 'applied';
EXCEPTION
    WHEN raise_exception THEN
        -- The block's subtransaction is rolled back: the intent is as it was.
        RETURN 'key_taken';
END;
$$;
