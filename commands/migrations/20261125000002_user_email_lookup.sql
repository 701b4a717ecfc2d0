-- Finds the account registered with an e-mail address straight from the event
-- store: registration checks it inside its unique-key claim, which closes the
-- window where a registration committed but its claim did not.
CREATE INDEX IF NOT EXISTS events_user_registered_email
    ON events ((payload -> 'UserRegistered' ->> 'email'))
    WHERE aggregate_type = 'user' AND event_type = 'UserRegistered';
