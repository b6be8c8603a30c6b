DROP INDEX users_org_id_oidc_identity_key;
ALTER TABLE users
    DROP CONSTRAINT users_oidc_identity_complete,
    DROP COLUMN oidc_subject,
    DROP COLUMN oidc_issuer;
