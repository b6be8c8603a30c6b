-- Enterprise SSO to the IPSIE SL1 profile. Per org: the longest time since the person last
-- authenticated at the IdP (`max_age`, seconds), whether an SSO sign-in may link to an existing
-- account by verified email (off by default), and the ID token algorithms accepted.
ALTER TABLE orgs
    ADD COLUMN sso_max_age integer CHECK (sso_max_age > 0),
    ADD COLUMN sso_link_by_email boolean NOT NULL DEFAULT false,
    ADD COLUMN sso_algs text[] NOT NULL DEFAULT '{PS256,ES256,EdDSA,RS256}'
        CHECK (cardinality(sso_algs) BETWEEN 1 AND 8
               AND sso_algs <@ '{PS256,PS384,PS512,ES256,ES384,EdDSA,RS256,RS384,RS512}');

-- A session signed in through SSO keeps when the person authenticated at the IdP and when the
-- IdP's session ends (`session_expiry`): the app's session ends then at the latest.
ALTER TABLE sessions
    ADD COLUMN auth_time timestamptz,
    ADD COLUMN idp_ends_at timestamptz;

CREATE INDEX sessions_idp_ends_at_idx ON sessions (idp_ends_at) WHERE idp_ends_at IS NOT NULL;

-- A sign-in in progress remembers the max_age it asked for and where to land afterwards.
ALTER TABLE oidc_logins
    ADD COLUMN max_age integer,
    ADD COLUMN land_on text CHECK (char_length(land_on) <= 2048);

-- Sessions that end because the IdP's session did.
ALTER TABLE revocations
    DROP CONSTRAINT revocations_source_check,
    ADD CONSTRAINT revocations_source_check
        CHECK (source IN ('ual', 'backchannel', 'admin', 'self', 'scim', 'cli', 'idp_expiry'));
