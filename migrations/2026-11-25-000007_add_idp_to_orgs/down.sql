DROP INDEX orgs_idp_issuer_client_id_key;
ALTER TABLE orgs
    DROP CONSTRAINT orgs_idp_complete,
    DROP COLUMN disabled_at,
    DROP COLUMN idp_client_id,
    DROP COLUMN idp_issuer;
