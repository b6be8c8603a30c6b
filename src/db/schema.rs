// @generated automatically by Diesel CLI.

diesel::table! {
    access_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        prefix -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Uuid,
        user_id -> Uuid,
        member_type -> Nullable<Text>,
        display -> Nullable<Text>,
    }
}

diesel::table! {
    groups (id) {
        id -> Uuid,
        org_id -> Uuid,
        display_name -> Text,
        external_id -> Nullable<Text>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    known_devices (user_id, device, network) {
        user_id -> Uuid,
        device -> Text,
        network -> Text,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    oidc_logins (state_hash) {
        state_hash -> Bytea,
        org_id -> Uuid,
        nonce -> Text,
        pkce_verifier -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        max_age -> Nullable<Int4>,
        land_on -> Nullable<Text>,
        end_others_of -> Nullable<Uuid>,
    }
}

diesel::table! {
    org_api_keys (id) {
        id -> Uuid,
        org_id -> Uuid,
        prefix -> Text,
        key_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    org_logouts (id) {
        id -> Int8,
        org_id -> Uuid,
        source -> Text,
        actor -> Text,
        spared_session_id -> Nullable<Uuid>,
        users_total -> Int4,
        users_done -> Int4,
        sessions_ended -> Int8,
        tokens_revoked -> Int8,
        last_user_id -> Nullable<Uuid>,
        started_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        failure -> Nullable<Text>,
    }
}

diesel::table! {
    orgs (id) {
        id -> Uuid,
        name -> Text,
        slug -> Text,
        created_at -> Timestamptz,
        idp_issuer -> Nullable<Text>,
        idp_client_id -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        idp_client_secret -> Nullable<Bytea>,
        sso_create_users -> Bool,
        email_domain -> Nullable<Text>,
        admin_group -> Nullable<Text>,
        sso_max_age -> Nullable<Int4>,
        sso_link_by_email -> Bool,
        sso_algs -> Array<Text>,
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
        action -> Text,
        detail -> Nullable<Jsonb>,
    }
}

diesel::table! {
    scim_tokens (id) {
        id -> Uuid,
        org_id -> Uuid,
        prefix -> Text,
        token_hash -> Bytea,
        client_id -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    seen_jtis (issuer, jti) {
        issuer -> Text,
        jti -> Text,
        expires_at -> Timestamptz,
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
        auth_time -> Nullable<Timestamptz>,
        idp_ends_at -> Nullable<Timestamptz>,
        reauth_requested_at -> Nullable<Timestamptz>,
        method -> Nullable<Text>,
        new_device -> Bool,
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
    ssf_streams (id) {
        id -> Uuid,
        org_id -> Uuid,
        transmitter -> Text,
        issuer -> Text,
        jwks_uri -> Text,
        configuration_endpoint -> Nullable<Text>,
        verification_endpoint -> Nullable<Text>,
        stream_id -> Nullable<Text>,
        audience -> Text,
        delivery -> Text,
        poll_endpoint -> Nullable<Text>,
        push_prefix -> Nullable<Text>,
        push_hash -> Nullable<Bytea>,
        bearer_sealed -> Nullable<Bytea>,
        status -> Text,
        verification_state -> Nullable<Text>,
        verification_requested_at -> Nullable<Timestamptz>,
        verified_at -> Nullable<Timestamptz>,
        events_received -> Int8,
        last_event_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        status_endpoint -> Nullable<Text>,
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
        oidc_issuer -> Nullable<Text>,
        oidc_subject -> Nullable<Text>,
        state -> Text,
        state_changed_at -> Nullable<Timestamptz>,
        state_changed_by -> Nullable<Text>,
        deleted_at -> Nullable<Timestamptz>,
        managed_by -> Text,
        break_glass -> Bool,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        version -> Int8,
        updated_at -> Timestamptz,
        name_formatted -> Nullable<Text>,
        emails -> Nullable<Jsonb>,
        active_unassigned -> Bool,
    }
}

diesel::joinable!(access_tokens -> users (user_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(groups -> orgs (org_id));
diesel::joinable!(known_devices -> users (user_id));
diesel::joinable!(oidc_logins -> orgs (org_id));
diesel::joinable!(org_api_keys -> orgs (org_id));
diesel::joinable!(org_logouts -> orgs (org_id));
diesel::joinable!(revocations -> orgs (org_id));
diesel::joinable!(revocations -> users (user_id));
diesel::joinable!(scim_tokens -> orgs (org_id));
diesel::joinable!(sessions -> orgs (org_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(ssf_streams -> orgs (org_id));
diesel::joinable!(todos -> users (user_id));
diesel::joinable!(users -> orgs (org_id));

diesel::allow_tables_to_appear_in_same_query!(
    access_tokens,
    group_members,
    groups,
    known_devices,
    oidc_logins,
    org_api_keys,
    org_logouts,
    orgs,
    revocations,
    scim_tokens,
    seen_jtis,
    sessions,
    settings,
    ssf_streams,
    todos,
    users,
);
