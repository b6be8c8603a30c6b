ALTER TABLE ssf_streams DROP COLUMN status_endpoint;
