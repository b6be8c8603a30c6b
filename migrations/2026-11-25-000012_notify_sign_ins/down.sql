DROP TRIGGER sessions_notify_sign_in ON sessions;
DROP FUNCTION notify_sign_in();
