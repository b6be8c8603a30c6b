-- SCIM attributes kept as the IdP sent them, so a PATCH returns exactly what was set.
ALTER TABLE users
    -- `name.formatted` as given (NULL: derived from the given and family names).
    ADD COLUMN name_formatted text CHECK (char_length(name_formatted) <= 256),
    -- `emails` as given: [{value, type?, primary?}] (NULL: never set, derived from userName).
    ADD COLUMN emails jsonb CHECK (emails IS NULL OR jsonb_typeof(emails) = 'array'),
    -- The IdP removed `active`: it is not shown until set again (the state is unchanged).
    ADD COLUMN active_unassigned boolean NOT NULL DEFAULT false;

ALTER TABLE group_members
    -- `members.type` and `members.display` as given (NULL: `User` and the user's userName).
    ADD COLUMN member_type text CHECK (char_length(member_type) <= 256),
    ADD COLUMN display text CHECK (char_length(display) <= 256);
