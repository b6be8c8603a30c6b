DROP TABLE org_api_keys;
