-- Users see and end their own sessions (issue 14). A session records how it signed in, and
-- whether it came from a device its user had not signed in from before.
ALTER TABLE sessions
    ADD COLUMN method text CHECK (method IN ('password', 'sso')),
    ADD COLUMN new_device boolean NOT NULL DEFAULT false;

-- The devices (browser and system, with the address's /24 or /48) a user has signed in from:
-- at most a few per user (the oldest are forgotten), so client input cannot grow it unbounded.
CREATE TABLE known_devices (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device text NOT NULL CHECK (char_length(device) <= 100),
    network text NOT NULL CHECK (char_length(network) <= 64),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device, network)
);

-- "End every other session" through the IdP: the session that asked, kept server-side with the
-- sign-in until its callback.
ALTER TABLE oidc_logins ADD COLUMN end_others_of uuid;

-- Sign-in notices say whether the device is new, so the user's other tabs can tell them.
CREATE OR REPLACE FUNCTION notify_sign_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ual_todo_sign_ins', json_build_object(
        'org_id', NEW.org_id,
        'user_id', NEW.user_id,
        'session_id', NEW.public_id,
        'user_agent', left(NEW.user_agent, 300),
        'ip', NEW.ip,
        'new_device', NEW.new_device,
        'at_ms', (extract(epoch FROM NEW.created_at) * 1000)::bigint
    )::text);
    RETURN NULL;
END
$$;
