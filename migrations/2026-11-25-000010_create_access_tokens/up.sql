-- Personal access tokens for the JSON API. Shown once; only the SHA-256 and a prefix are kept.
-- Revoked tokens stay (revoked_at set) so the user can see what was ended and when.
CREATE TABLE access_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    prefix text NOT NULL UNIQUE,
    token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX access_tokens_user_id_idx ON access_tokens (user_id);
