DROP INDEX sessions_org_id_oidc_sid_idx;
DROP TABLE oidc_logins;
ALTER TABLE orgs
    DROP COLUMN email_domain,
    DROP COLUMN sso_create_users,
    DROP COLUMN idp_client_secret;
