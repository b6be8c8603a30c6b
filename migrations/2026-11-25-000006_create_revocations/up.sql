-- The audit log: one row for every time sessions or tokens were ended, whoever asked.
CREATE TABLE revocations (
    id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    source text NOT NULL CHECK (source IN ('ual', 'backchannel', 'admin', 'self')),
    -- Who asked: an API key prefix, a JWT issuer and id, an admin's id, or the user.
    actor text NOT NULL,
    sessions_ended integer NOT NULL,
    tokens_revoked integer NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX revocations_org_id_created_at_idx ON revocations (org_id, created_at DESC);
CREATE INDEX revocations_user_id_idx ON revocations (user_id);
