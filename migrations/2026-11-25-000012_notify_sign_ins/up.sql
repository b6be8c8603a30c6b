-- Announces every new signed-in session to all instances (admin dashboards show sign-ins live).
-- NOTIFY is delivered on commit, so listeners only hear of sessions that exist.
CREATE FUNCTION notify_sign_in() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER sessions_notify_sign_in
    AFTER INSERT ON sessions
    FOR EACH ROW
    WHEN (NEW.user_id IS NOT NULL)
    EXECUTE FUNCTION notify_sign_in();
