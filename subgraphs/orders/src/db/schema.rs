// Diesel table definitions for the `orders` schema (see migrations/orders).
// The outbox is kit::events::outbox's.

diesel::table! {
    orders (id) {
        id -> Uuid,
        number -> Text,
        customer_id -> Uuid,
        status -> Text,
        subtotal -> Nullable<Numeric>,
        tax -> Nullable<Numeric>,
        shipping_cost -> Nullable<Numeric>,
        total -> Nullable<Numeric>,
        reserved_until -> Nullable<Timestamptz>,
        confirmed_at -> Nullable<Timestamptz>,
        customer_snapshot -> Nullable<Jsonb>,
        notes -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        from_cart -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    order_items (order_id, sku) {
        order_id -> Uuid,
        sku -> Text,
        quantity -> Int4,
        unit_price -> Nullable<Numeric>,
        line_total -> Nullable<Numeric>,
        product_name -> Nullable<Text>,
    }
}

diesel::table! {
    order_status_history (id) {
        id -> Int8,
        order_id -> Uuid,
        from_status -> Nullable<Text>,
        to_status -> Text,
        reason -> Nullable<Text>,
        actor_id -> Nullable<Uuid>,
        at -> Timestamptz,
    }
}

diesel::table! {
    payments (order_id) {
        order_id -> Uuid,
        status -> Text,
        amount -> Numeric,
        provider -> Text,
        method -> Nullable<Text>,
        provider_reference -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refunds (order_id) {
        order_id -> Uuid,
        amount -> Numeric,
        provider_reference -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
        goods -> Nullable<Text>,
    }
}

diesel::table! {
    confirmation_keys (customer_id, key) {
        customer_id -> Uuid,
        key -> Text,
        order_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    cart_lines (customer_id, sku) {
        customer_id -> Uuid,
        sku -> Text,
        quantity -> Int4,
        added_at -> Timestamptz,
    }
}

diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(order_status_history -> orders (order_id));
diesel::joinable!(payments -> orders (order_id));

diesel::allow_tables_to_appear_in_same_query!(
    orders,
    order_items,
    order_status_history,
    payments,
    refunds,
    confirmation_keys,
    cart_lines,
);
