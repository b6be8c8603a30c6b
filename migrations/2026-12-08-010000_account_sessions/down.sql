CREATE OR REPLACE FUNCTION notify_sign_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ual_todo_sign_ins', json_build_object(
        'org_id', NEW.org_id,
        'user_id', NEW.user_id,
        'session_id', NEW.public_id,
        'user_agent', left(NEW.user_agent, 300),
        'ip', NEW.ip,
        'at_ms', (extract(epoch FROM NEW.created_at) * 1000)::bigint
    )::text);
    RETURN NULL;
END
$$;
ALTER TABLE oidc_logins DROP COLUMN end_others_of;
DROP TABLE known_devices;
ALTER TABLE sessions DROP COLUMN new_device, DROP COLUMN method;
