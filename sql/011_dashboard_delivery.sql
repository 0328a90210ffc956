-- Which emailed dashboards went out (reports/dashboard.py): a re-run of a period mails only the
-- audiences that did not get it yet, unless a resend is asked for.
CREATE TABLE dashboard_delivery (
    period      text NOT NULL,          -- the period's label: 2026-11-24, 2026-W47, ...
    audience    text NOT NULL,          -- recipients.Audience.key
    message_id  text NOT NULL,
    recipients  text[] NOT NULL,        -- accepted by the SMTP server
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON dashboard_delivery (period, audience);
