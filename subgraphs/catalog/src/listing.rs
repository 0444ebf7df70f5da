//! The storefront listing: products in SKU order, a page at a time, filtered
//! by name search, category and whether they are active.
//!
//! Name search must stay fast at catalog scale, so it is written to match the
//! trigram index on `lower(name)` (see `migrations/catalog`).

use diesel::{dsl::sql, prelude::*, sql_types::Bool, sql_types::Text};
use diesel_async::RunQueryDsl;
use kit::{
    db::{PgPool, escape_like},
    pagination::Page,
};

use crate::{
    db::{Product, schema::products},
    error::CatalogError,
};

/// Which products a listing shows.
#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    /// Case-insensitive substring of the name; `%` and `_` are literal.
    pub search: Option<String>,
    /// Exact category, ignoring case.
    pub category: Option<String>,
    /// Also list deactivated products (admins).
    pub include_inactive: bool,
}

/// Products in SKU order, `first` after the SKU `after`.
pub async fn list(
    pool: &PgPool,
    filter: &ProductFilter,
    first: i64,
    after: Option<&str>,
) -> Result<Page<Product>, CatalogError> {
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(escape_like);
    let category = filter
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let filtered = || {
        let mut query = products::table.into_boxed();
        if !filter.include_inactive {
            query = query.filter(products::active.eq(true));
        }
        if let Some(search) = &search {
            // Spelled out so it is exactly the expression of the trigram index
            // `products_name_trgm_idx`; SQL literals also keep the statement
            // out of the prepared-statement cache, so it is always planned with
            // the actual pattern rather than a generic plan.
            query = query.filter(
                sql::<Bool>("lower(products.name) LIKE ('%' || lower(")
                    .bind::<Text, _>(search.clone())
                    .sql(") || '%')"),
            );
        }
        if let Some(category) = category {
            query = query.filter(
                sql::<Bool>("lower(products.category) = lower(")
                    .bind::<Text, _>(category.to_owned())
                    .sql(")"),
            );
        }
        query
    };
    let mut conn = pool.get().await?;
    let total_count = filtered().count().get_result(&mut conn).await?;
    let mut page = filtered();
    if let Some(after) = after {
        page = page.filter(products::sku.gt(after.to_owned()));
    }
    let items: Vec<Product> = page
        .order(products::sku)
        .limit(first + 1)
        .select(Product::as_select())
        .load(&mut conn)
        .await?;
    Ok(Page::from_overfetch(items, first, total_count))
}
