// @generated automatically by Diesel CLI.

diesel::table! {
    orgs (id) {
        id -> Uuid,
        name -> Text,
        slug -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    revocations (id) {
        id -> Int8,
        org_id -> Uuid,
        user_id -> Nullable<Uuid>,
        source -> Text,
        actor -> Text,
        sessions_ended -> Int4,
        tokens_revoked -> Int4,
        request_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Bytea,
        public_id -> Uuid,
        user_id -> Nullable<Uuid>,
        org_id -> Nullable<Uuid>,
        state -> Jsonb,
        oidc_sid -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    todos (id) {
        id -> Uuid,
        user_id -> Uuid,
        title -> Text,
        done -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        org_id -> Uuid,
        email -> Text,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(revocations -> orgs (org_id));
diesel::joinable!(revocations -> users (user_id));
diesel::joinable!(sessions -> orgs (org_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(todos -> users (user_id));
diesel::joinable!(users -> orgs (org_id));

diesel::allow_tables_to_appear_in_same_query!(orgs, revocations, sessions, settings, todos, users,);
