-- The actix-session store. The cookie carries a random key; only its SHA-256 is kept here,
-- so a copy of this table cannot be replayed as a cookie.
CREATE TABLE sessions (
    id bytea PRIMARY KEY CHECK (octet_length(id) = 32),
    -- What pages, admins and notifications call the session: never the key or its hash.
    public_id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
    state jsonb NOT NULL,
    -- The IdP's session id (the ID token's `sid`), for OIDC back-channel logout.
    oidc_sid text,
    user_agent text,
    ip text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
