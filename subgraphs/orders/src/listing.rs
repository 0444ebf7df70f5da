//! Lists of orders, newest first, keyset-paginated by id (ids are UUIDv7, so
//! id order is creation order).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kit::pagination::Page;
use uuid::Uuid;

use crate::{
    db::{Order, schema::orders},
    lifecycle::OrderStatus,
};

/// Which orders to list.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    /// Only this customer's.
    pub customer: Option<Uuid>,
    pub status: Option<OrderStatus>,
}

/// Up to `first` orders matching `filter` after the cursor id `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &OrderFilter,
    first: i64,
    after: Option<Uuid>,
) -> QueryResult<Page<Order>> {
    let filtered = || {
        let mut query = orders::table.into_boxed();
        if let Some(customer) = filter.customer {
            query = query.filter(orders::customer_id.eq(customer));
        }
        if let Some(status) = filter.status {
            query = query.filter(orders::status.eq(status.as_str()));
        }
        query
    };
    let total_count: i64 = filtered().count().get_result(conn).await?;
    let mut query = filtered();
    if let Some(after) = after {
        query = query.filter(orders::id.lt(after));
    }
    let rows = query
        .order(orders::id.desc())
        .limit(first + 1)
        .select(Order::as_select())
        .load(conn)
        .await?;
    Ok(Page::from_overfetch(rows, first, total_count))
}
