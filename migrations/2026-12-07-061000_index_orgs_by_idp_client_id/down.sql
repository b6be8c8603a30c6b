DROP INDEX orgs_idp_client_id_idx;
