-- The org's identity provider: its issuer signs the JWTs that may call Universal Logout, and
-- (with the client id) identifies the org in OIDC sign-in and back-channel logout.
ALTER TABLE orgs
    ADD COLUMN idp_issuer text CHECK (idp_issuer ~ '^https?://'),
    ADD COLUMN idp_client_id text CHECK (char_length(idp_client_id) BETWEEN 1 AND 255),
    -- A disabled org's credentials authenticate but may do nothing (403).
    ADD COLUMN disabled_at timestamptz,
    ADD CONSTRAINT orgs_idp_complete CHECK ((idp_issuer IS NULL) = (idp_client_id IS NULL));

CREATE UNIQUE INDEX orgs_idp_issuer_client_id_key ON orgs (idp_issuer, idp_client_id);
