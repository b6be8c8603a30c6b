-- "Sign out everyone in the org" (issue 14): one row per run, its progress written by each batch
-- in the batch's own transaction, so every instance's dashboard reads the same figures.
CREATE TABLE org_logouts (
    id bigserial PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    source text NOT NULL,
    actor text NOT NULL,
    -- The public id of the session spared (the admin's own), if any.
    spared_session_id uuid,
    users_total integer NOT NULL,
    users_done integer NOT NULL DEFAULT 0,
    sessions_ended bigint NOT NULL DEFAULT 0,
    tokens_revoked bigint NOT NULL DEFAULT 0,
    -- Keyset cursor: the highest user id done.
    last_user_id uuid,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    failure text
);
-- One run per org at a time, whichever instance started it.
CREATE UNIQUE INDEX org_logouts_running_idx ON org_logouts (org_id) WHERE finished_at IS NULL;
CREATE INDEX org_logouts_org_id_started_at_idx ON org_logouts (org_id, started_at DESC);
-- Batches walk an org's users by id.
CREATE INDEX users_org_id_id_idx ON users (org_id, id);
