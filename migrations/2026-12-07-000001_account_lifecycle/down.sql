DELETE FROM revocations WHERE source NOT IN ('ual', 'backchannel', 'admin', 'self');
ALTER TABLE revocations
    DROP CONSTRAINT revocations_source_check,
    ADD CONSTRAINT revocations_source_check CHECK (source IN ('ual', 'backchannel', 'admin', 'self')),
    DROP COLUMN detail,
    DROP COLUMN action;
DROP TABLE scim_tokens;
DROP TABLE group_members;
DROP TABLE groups;
ALTER TABLE orgs DROP COLUMN admin_group;
DROP INDEX users_deleted_at_idx;
DROP INDEX users_org_id_external_id_idx;
DELETE FROM users WHERE state = 'deleted';
DROP INDEX users_org_id_oidc_identity_key;
CREATE UNIQUE INDEX users_org_id_oidc_identity_key ON users (org_id, oidc_issuer, oidc_subject);
DROP INDEX users_org_id_email_key;
CREATE UNIQUE INDEX users_org_id_email_key ON users (org_id, lower(email));
ALTER TABLE users
    DROP CONSTRAINT users_deleted_at_iff_deleted,
    DROP COLUMN updated_at, DROP COLUMN version, DROP COLUMN family_name, DROP COLUMN given_name,
    DROP COLUMN display_name, DROP COLUMN external_id, DROP COLUMN break_glass,
    DROP COLUMN managed_by, DROP COLUMN deleted_at, DROP COLUMN state_changed_by,
    DROP COLUMN state_changed_at, DROP COLUMN state;
