-- Notification e-mails (gateway::notify).
-- Staff's replacements of the built-in templates; a kind without a row uses its default.
CREATE TABLE email_templates (
    kind       text        PRIMARY KEY,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by uuid        NOT NULL
);

-- One row per mail handed to SMTP: (source event, recipient). The sender inserts the
-- row in a transaction that stays open while SMTP accepts the message and commits
-- after, so a concurrent or repeated delivery of the event finds it and sends nothing.
CREATE TABLE email_ledger (
    event_id  uuid        NOT NULL,
    recipient text        NOT NULL,
    kind      text        NOT NULL,
    sent_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, recipient)
);
