// Diesel table definitions for the `users` schema (see migrations/users).

diesel::table! {
    users (id) {
        id -> Uuid,
        device_id -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        role -> Text,
        password_hash -> Text,
        active -> Bool,
        shipping_address -> Nullable<Jsonb>,
        billing_address -> Nullable<Jsonb>,
        payment_method_token -> Nullable<Text>,
        payment_method_label -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        access_epoch -> Int8,
        access_changed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Uuid,
        family_id -> Uuid,
        user_id -> Uuid,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Uuid,
        user_id -> Uuid,
        source -> Text,
        event_id -> Int8,
        kind -> Text,
        order_id -> Nullable<Uuid>,
        order_number -> Nullable<Text>,
        subject -> Text,
        body -> Text,
        channel -> Text,
        delivery -> Text,
        attempts -> Int4,
        next_attempt_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(notifications -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, refresh_tokens, notifications);
