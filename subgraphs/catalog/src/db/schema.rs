// Diesel table definitions for the `catalog` schema (see migrations/catalog).

diesel::table! {
    products (sku) {
        sku -> Text,
        name -> Text,
        description -> Nullable<Text>,
        upc -> Nullable<Text>,
        image_urls -> Array<Text>,
        category -> Nullable<Text>,
        active -> Bool,
        metadata -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}
