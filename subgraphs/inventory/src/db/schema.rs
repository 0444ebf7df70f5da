// Diesel table definitions for the `inventory` schema (see migrations/inventory).

diesel::table! {
    items (sku) {
        sku -> Text,
        active -> Bool,
        margin -> Nullable<Numeric>,
        on_hand -> Int4,
        reserved -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    batches (id) {
        id -> Uuid,
        sku -> Text,
        quantity -> Int4,
        remaining -> Int4,
        unit_cost -> Numeric,
        mfd_date -> Nullable<Date>,
        expiry_date -> Nullable<Date>,
        received_at -> Timestamptz,
        supplier_id -> Nullable<Text>,
        truck_id -> Nullable<Text>,
        transaction_id -> Nullable<Text>,
        /// `remaining = 0`, generated (the FEFO index's predicate).
        sold_out -> Bool,
    }
}

diesel::table! {
    reservations (order_id) {
        order_id -> Uuid,
        status -> Text,
        expires_at -> Timestamptz,
        commitment -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    reservation_lines (order_id, sku) {
        order_id -> Uuid,
        sku -> Text,
        quantity -> Int4,
    }
}

diesel::table! {
    allocations (order_id, batch_id) {
        order_id -> Uuid,
        batch_id -> Uuid,
        sku -> Text,
        quantity -> Int4,
        unit_cost -> Numeric,
    }
}

diesel::table! {
    restocks (transaction_id) {
        transaction_id -> Text,
        truck_id -> Text,
        supplier_id -> Text,
        receipt -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stock_movements (id) {
        id -> Int8,
        sku -> Text,
        kind -> Text,
        on_hand_delta -> Int4,
        reserved_delta -> Int4,
        batch_id -> Nullable<Uuid>,
        reference -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(batches -> items (sku));
diesel::joinable!(reservation_lines -> reservations (order_id));
diesel::allow_tables_to_appear_in_same_query!(
    items,
    batches,
    reservations,
    reservation_lines,
    allocations,
    restocks,
    stock_movements
);
