-- Instance-wide values generated on first start (the cookie key), shared by every instance.
CREATE TABLE settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
