-- Bearer keys an IdP uses to call Universal Logout for one org. The key is shown once; only its
-- SHA-256 and a display prefix are kept.
CREATE TABLE org_api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    prefix text NOT NULL UNIQUE,
    key_hash bytea NOT NULL CHECK (octet_length(key_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX org_api_keys_org_id_idx ON org_api_keys (org_id);
