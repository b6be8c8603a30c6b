ALTER TABLE group_members
    DROP COLUMN display,
    DROP COLUMN member_type;

ALTER TABLE users
    DROP COLUMN active_unassigned,
    DROP COLUMN emails,
    DROP COLUMN name_formatted;
