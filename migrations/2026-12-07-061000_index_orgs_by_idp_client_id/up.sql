-- `POST /oauth/token` finds the orgs whose IdP registration has a client id (an RFC 7523
-- assertion names only its client, not the issuer): an unauthenticated lookup, so indexed.
CREATE INDEX orgs_idp_client_id_idx ON orgs (idp_client_id) WHERE idp_client_id IS NOT NULL;
