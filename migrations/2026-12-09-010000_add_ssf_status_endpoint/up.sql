-- The transmitter's status endpoint (SSF 1.0 §8.1.2.1), read when the stream is shown.
ALTER TABLE ssf_streams ADD COLUMN status_endpoint TEXT;
