-- Account lifecycle (SCIM 2.0, IPSIE AL1/AL2). A user is active, suspended or deleted; who changed
-- the state, and when, is kept beside it. A deleted user is soft-deleted: invisible everywhere,
-- its todos kept until the sweeper purges it after the operator's retention, and its email (and
-- IdP identity) free for a new user at once.
ALTER TABLE users
    ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'deleted')),
    ADD COLUMN state_changed_at timestamptz,
    ADD COLUMN state_changed_by text CHECK (char_length(state_changed_by) <= 256),
    ADD COLUMN deleted_at timestamptz,
    -- Who manages the account: `local` (CLI, dashboard), `sso` (created at a first SSO sign-in) or
    -- `scim` (the org's IdP; then it cannot be edited locally).
    ADD COLUMN managed_by text NOT NULL DEFAULT 'local' CHECK (managed_by IN ('local', 'sso', 'scim')),
    -- May sign in with a password although the org has SSO (IPSIE: off by default).
    ADD COLUMN break_glass boolean NOT NULL DEFAULT false,
    -- SCIM attributes.
    ADD COLUMN external_id text CHECK (char_length(external_id) <= 256),
    ADD COLUMN display_name text CHECK (char_length(display_name) <= 256),
    ADD COLUMN given_name text CHECK (char_length(given_name) <= 256),
    ADD COLUMN family_name text CHECK (char_length(family_name) <= 256),
    -- Bumped by every change a SCIM client can see: the resource's ETag.
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT users_deleted_at_iff_deleted CHECK ((state = 'deleted') = (deleted_at IS NOT NULL));

DROP INDEX users_org_id_email_key;
CREATE UNIQUE INDEX users_org_id_email_key ON users (org_id, lower(email)) WHERE state <> 'deleted';
DROP INDEX users_org_id_oidc_identity_key;
CREATE UNIQUE INDEX users_org_id_oidc_identity_key ON users (org_id, oidc_issuer, oidc_subject)
    WHERE state <> 'deleted';
CREATE INDEX users_org_id_external_id_idx ON users (org_id, external_id) WHERE state <> 'deleted';
CREATE INDEX users_deleted_at_idx ON users (deleted_at) WHERE state = 'deleted';

-- The IdP group whose members are the org's admins (IPSIE AL2), by display name.
ALTER TABLE orgs ADD COLUMN admin_group text CHECK (char_length(admin_group) BETWEEN 1 AND 256);

-- Groups provisioned by the org's IdP over SCIM.
CREATE TABLE groups (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 256),
    external_id text CHECK (char_length(external_id) <= 256),
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX groups_org_id_display_name_key ON groups (org_id, lower(display_name));

CREATE TABLE group_members (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX group_members_user_id_idx ON group_members (user_id);

-- Credentials of the org's SCIM client: long-lived bearer tokens (`scim_…`, shown once, stored
-- hashed like API keys) and short-lived OAuth access tokens from `POST /oauth/token`
-- (`expires_at` set, `client_id` the IdP client that asked).
CREATE TABLE scim_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    prefix text NOT NULL UNIQUE,
    token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    client_id text CHECK (char_length(client_id) <= 256),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX scim_tokens_org_id_idx ON scim_tokens (org_id);
CREATE INDEX scim_tokens_expires_at_idx ON scim_tokens (expires_at) WHERE expires_at IS NOT NULL;

-- The audit log records every account change, not only revocations: what happened (`revoke`,
-- `suspend`, `reactivate`, `delete`, `create`, `update`, `grant_admin`, `remove_admin`,
-- `break_glass`), and the state before and after where it changed.
-- New sources: the org's IdP over SCIM, and operators on the command line (`ssf` comes with
-- Shared Signals).
ALTER TABLE revocations
    ADD COLUMN action text NOT NULL DEFAULT 'revoke' CHECK (char_length(action) <= 32),
    ADD COLUMN detail jsonb,
    DROP CONSTRAINT revocations_source_check,
    ADD CONSTRAINT revocations_source_check
        CHECK (source IN ('ual', 'backchannel', 'admin', 'self', 'scim', 'cli'));
