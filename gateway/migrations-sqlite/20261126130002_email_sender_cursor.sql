-- The embedded e-mail sender's place in the event store (the distributed sender's
-- place is its durable JetStream consumer): the position of the last event whose
-- mails are all sent (or that needs none). One row.
CREATE TABLE email_sender_cursor (
    id       integer PRIMARY KEY CHECK (id = 1),
    position integer NOT NULL
);
