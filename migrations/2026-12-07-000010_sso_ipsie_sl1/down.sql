DELETE FROM revocations WHERE source = 'idp_expiry';
ALTER TABLE revocations
    DROP CONSTRAINT revocations_source_check,
    ADD CONSTRAINT revocations_source_check
        CHECK (source IN ('ual', 'backchannel', 'admin', 'self', 'scim', 'cli'));
ALTER TABLE oidc_logins DROP COLUMN land_on, DROP COLUMN max_age;
DROP INDEX sessions_idp_ends_at_idx;
ALTER TABLE sessions DROP COLUMN idp_ends_at, DROP COLUMN auth_time;
ALTER TABLE orgs DROP COLUMN sso_algs, DROP COLUMN sso_link_by_email, DROP COLUMN sso_max_age;
