-- The user's identity at the org's IdP (OIDC `iss` + `sub`), for SSO and `iss_sub` subjects.
ALTER TABLE users
    ADD COLUMN oidc_issuer text,
    ADD COLUMN oidc_subject text,
    ADD CONSTRAINT users_oidc_identity_complete CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));

CREATE UNIQUE INDEX users_org_id_oidc_identity_key ON users (org_id, oidc_issuer, oidc_subject);
