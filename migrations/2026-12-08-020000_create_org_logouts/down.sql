DROP INDEX users_org_id_id_idx;
DROP TABLE org_logouts;
