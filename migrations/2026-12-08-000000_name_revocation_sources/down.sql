DELETE FROM revocations WHERE source IN ('caep', 'risc');
ALTER TABLE revocations DROP CONSTRAINT revocations_source_check;
UPDATE revocations SET source = 'cli' WHERE source = 'operator';
ALTER TABLE revocations
    ADD CONSTRAINT revocations_source_check
        CHECK (source IN ('ual', 'backchannel', 'admin', 'self', 'scim', 'cli', 'idp_expiry', 'reauth'));
