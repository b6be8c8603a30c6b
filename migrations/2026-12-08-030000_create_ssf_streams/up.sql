-- Shared Signals streams (issue 15): one per org, at the org's transmitter. A SET pushed to
-- /ssf/events is matched to its stream (and so its org) by the push authorization header, kept
-- only as a SHA-256 and a display prefix; `issuer`, `audience` and `jwks_uri` are what its SETs
-- must be and are signed with. The bearer the app presents to the transmitter is sealed.
CREATE TABLE ssf_streams (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL UNIQUE REFERENCES orgs (id) ON DELETE CASCADE,
    transmitter text NOT NULL CHECK (char_length(transmitter) <= 2048),
    issuer text NOT NULL CHECK (char_length(issuer) <= 2048),
    jwks_uri text NOT NULL CHECK (char_length(jwks_uri) <= 2048),
    configuration_endpoint text CHECK (char_length(configuration_endpoint) <= 2048),
    verification_endpoint text CHECK (char_length(verification_endpoint) <= 2048),
    stream_id text CHECK (char_length(stream_id) <= 255),
    audience text NOT NULL CHECK (char_length(audience) <= 2048),
    delivery text NOT NULL CHECK (delivery IN ('push', 'poll')),
    poll_endpoint text CHECK (char_length(poll_endpoint) <= 2048),
    push_prefix text UNIQUE,
    push_hash bytea,
    bearer_sealed bytea,
    status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'paused', 'disabled')),
    verification_state text CHECK (char_length(verification_state) <= 255),
    verification_requested_at timestamptz,
    verified_at timestamptz,
    events_received bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz,
    last_error text CHECK (char_length(last_error) <= 1024),
    last_error_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((push_prefix IS NULL) = (push_hash IS NULL))
);
