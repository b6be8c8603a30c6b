-- The command line is the operator's door: its audit rows say `operator` (issue 14). Shared
-- Signals events are audited as `caep` and `risc` (issue 15).
ALTER TABLE revocations DROP CONSTRAINT revocations_source_check;
UPDATE revocations SET source = 'operator' WHERE source = 'cli';
ALTER TABLE revocations
    ADD CONSTRAINT revocations_source_check
        CHECK (source IN ('ual', 'backchannel', 'admin', 'self', 'scim', 'operator', 'idp_expiry',
                          'reauth', 'caep', 'risc'));
