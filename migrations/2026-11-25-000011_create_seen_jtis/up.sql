-- JWT ids already used (Universal Logout JWTs, logout tokens), kept until the JWT expires, so a
-- captured JWT cannot be replayed. Written in the same transaction as the revocation it caused.
CREATE TABLE seen_jtis (
    issuer text NOT NULL,
    jti text NOT NULL CHECK (char_length(jti) BETWEEN 1 AND 255),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (issuer, jti)
);

CREATE INDEX seen_jtis_expires_at_idx ON seen_jtis (expires_at);
