-- Single sign-on per org: the OIDC client secret (encrypted by the app, see secret_box.rs), whether
-- unknown users are created at their first SSO sign-in, and the email domain that routes a
-- "Sign in with SSO" to the org.
ALTER TABLE orgs
    ADD COLUMN idp_client_secret bytea,
    ADD COLUMN sso_create_users boolean NOT NULL DEFAULT true,
    ADD COLUMN email_domain text UNIQUE CHECK (email_domain = lower(email_domain) AND email_domain ~ '^[a-z0-9.-]+\.[a-z]{2,}$');

-- A sign-in in progress: kept server-side for ten minutes, used once. Keyed by the SHA-256 of
-- its `state`; the browser that started it holds the state in a cookie.
CREATE TABLE oidc_logins (
    state_hash bytea PRIMARY KEY CHECK (octet_length(state_hash) = 32),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    nonce text NOT NULL,
    pkce_verifier text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX oidc_logins_expires_at_idx ON oidc_logins (expires_at);

-- Back-channel logout ends the sessions of one IdP session.
CREATE INDEX sessions_org_id_oidc_sid_idx ON sessions (org_id, oidc_sid) WHERE oidc_sid IS NOT NULL;
