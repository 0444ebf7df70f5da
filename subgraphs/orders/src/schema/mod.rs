//! The orders subgraph's GraphQL surface. Resolvers are thin: they check who
//! is calling, translate GraphQL input into domain values and call
//! [`checkout`], [`confirm`], [`transitions`], [`cart`] or the reads.

mod customer;
mod types;

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, ID, Object, Subscription as SubscriptionObject, connection::Edge, dataloader::Loader,
};
use futures::{Stream, StreamExt};
use kit::{
    ApiError, ApiResult,
    auth::{AuthExt, Claims, Role},
    db::PgPool,
    pagination::{decode_cursor, encode_cursor, page_size},
};
use uuid::Uuid;

pub use self::{customer::*, types::*};
use crate::{
    OrdersState, cart, checkout, confirm,
    db::{self, Line},
    failed_delivery::{self, Goods},
    feed,
    lifecycle::OrderStatus,
    listing::{self, OrderFilter},
    order, payments, transitions,
};

fn state<'a>(ctx: &'a Context<'_>) -> &'a OrdersState {
    ctx.data_unchecked::<Arc<OrdersState>>()
}

fn parse_id(field: &str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_input(field, format!("{:?} is not a valid id", id.as_str())))
}

/// Who may shop: customers (people, fridges), partners (integrations that
/// order through their persisted documents) and admins.
fn shopper<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Claims> {
    ctx.auth()
        .require_role(&[Role::Customer, Role::Partner, Role::Admin])
}

/// Batches the item lookups of a request (lists of orders) into one query.
pub struct ItemsLoader(pub PgPool);

impl Loader<Uuid> for ItemsLoader {
    type Value = Vec<db::Item>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<db::Item>>, ApiError> {
        let mut conn = self.0.get().await?;
        let mut by_order: HashMap<Uuid, Vec<db::Item>> = HashMap::new();
        for item in order::items_of(&mut conn, keys).await? {
            by_order.entry(item.order_id).or_default().push(item);
        }
        Ok(by_order)
    }
}

/// Batches payment lookups into one query.
pub struct PaymentLoader(pub PgPool);

impl Loader<Uuid> for PaymentLoader {
    type Value = db::Payment;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, db::Payment>, ApiError> {
        let mut conn = self.0.get().await?;
        Ok(payments::find_many(&mut conn, keys)
            .await?
            .into_iter()
            .map(|p| (p.order_id, p))
            .collect())
    }
}

pub(crate) async fn order_page(
    st: &OrdersState,
    filter: &OrderFilter,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<OrderConnection> {
    let first = page_size(first, 20)?;
    let after = match after.as_deref().map(decode_cursor).transpose()? {
        Some(key) => Some(
            Uuid::parse_str(&key).map_err(|_| ApiError::bad_input("after", "invalid cursor"))?,
        ),
        None => None,
    };
    let mut conn = st.pool.get().await?;
    let page = listing::list(&mut conn, filter, first, after).await?;
    let mut connection = OrderConnection::with_additional_fields(
        after.is_some(),
        page.has_next_page,
        OrderConnectionFields {
            total_count: page.total_count,
        },
    );
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|o| Edge::new(encode_cursor(&o.id.to_string()), Order::from(o))),
    );
    Ok(connection)
}

/// An order `claims` may read (see [`order::readable_by`]), or `NOT_FOUND`.
async fn visible_order(ctx: &Context<'_>, id: &ID) -> ApiResult<db::Order> {
    let claims = ctx.auth().claims()?;
    let id = parse_id("id", id)?;
    let mut conn = state(ctx).pool.get().await?;
    order::find(&mut conn, id)
        .await?
        .filter(|o| order::readable_by(o, claims))
        .ok_or_else(|| ApiError::NotFound("no such order".into()))
}

async fn edit(ctx: &Context<'_>, order_id: &ID, change: checkout::Edit) -> ApiResult<Order> {
    let claims = ctx.auth().claims()?;
    let order_id = parse_id("orderId", order_id)?;
    Ok(Order::from(
        checkout::edit(state(ctx), claims, order_id, change).await?,
    ))
}

pub struct Query;

#[Object]
impl Query {
    /// One order: its customer or ADMIN, and a TRUCK once it is paid (what a
    /// delivery needs only); anyone else gets NOT_FOUND.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Order>> {
        Ok(Some(Order::from(visible_order(ctx, &id).await?)))
    }

    /// ADMIN: every order, newest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        status: Option<OrderStatus>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<OrderConnection> {
        ctx.auth().require_role(&[Role::Admin])?;
        let filter = OrderFilter {
            customer: None,
            status,
        };
        order_page(state(ctx), &filter, first, after).await
    }

    /// Federation entity resolver: orders' part of `User`.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        Uuid::parse_str(&id).ok().map(|id| User { id })
    }

    /// Federation entity resolver: `Order` by `id`, for its customer, ADMIN,
    /// and a TRUCK once it is paid (a shipment's order).
    #[graphql(entity)]
    async fn find_order_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Order>> {
        match visible_order(ctx, &id).await {
            Ok(order) => Ok(Some(Order::from(order))),
            Err(ApiError::NotFound(_) | ApiError::BadUserInput { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Adds units of a product to the caller's cart.
    async fn add_to_cart(&self, ctx: &Context<'_>, sku: String, quantity: i32) -> ApiResult<Cart> {
        let claims = shopper(ctx)?;
        let st = state(ctx);
        cart::put(st, claims.sub, &sku, cart::Set::Add(quantity)).await?;
        Ok(cart::priced(st, claims.sub).await?.into())
    }

    /// Sets how many units of a product the cart holds.
    async fn update_cart_line(
        &self,
        ctx: &Context<'_>,
        sku: String,
        quantity: i32,
    ) -> ApiResult<Cart> {
        let claims = shopper(ctx)?;
        let st = state(ctx);
        cart::put(st, claims.sub, &sku, cart::Set::To(quantity)).await?;
        Ok(cart::priced(st, claims.sub).await?.into())
    }

    /// Removes a product from the cart.
    async fn remove_from_cart(&self, ctx: &Context<'_>, sku: String) -> ApiResult<Cart> {
        let claims = shopper(ctx)?;
        let st = state(ctx);
        cart::remove(&mut *st.pool.get().await?, claims.sub, &sku).await?;
        Ok(cart::priced(st, claims.sub).await?.into())
    }

    /// Empties the cart.
    async fn clear_cart(&self, ctx: &Context<'_>) -> ApiResult<Cart> {
        let claims = shopper(ctx)?;
        let st = state(ctx);
        cart::clear(&mut *st.pool.get().await?, claims.sub, None).await?;
        Ok(cart::priced(st, claims.sub).await?.into())
    }

    /// Reserves `items` (or the cart when omitted) and creates the order RESERVED.
    /// Short stock → INSUFFICIENT_STOCK with `extensions.shortfall`; nothing is written.
    async fn preview_order(
        &self,
        ctx: &Context<'_>,
        items: Option<Vec<OrderLineInput>>,
    ) -> ApiResult<Order> {
        let claims = shopper(ctx)?;
        let items = items.map(|items| {
            items
                .into_iter()
                .map(|i| Line {
                    sku: i.sku,
                    quantity: i.quantity,
                })
                .collect()
        });
        Ok(Order::from(
            checkout::preview(state(ctx), claims.sub, items).await?,
        ))
    }

    /// Adds units of a product to a RESERVED order (its customer or ADMIN);
    /// more stock is reserved and the totals recalculated.
    async fn add_order_line(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        sku: String,
        quantity: i32,
    ) -> ApiResult<Order> {
        edit(ctx, &order_id, checkout::Edit::Add { sku, quantity }).await
    }

    /// Sets a line's quantity on a RESERVED order; the reservation follows.
    async fn update_order_line(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        sku: String,
        quantity: i32,
    ) -> ApiResult<Order> {
        edit(ctx, &order_id, checkout::Edit::Set { sku, quantity }).await
    }

    /// Removes a line from a RESERVED order; its stock is released.
    async fn remove_order_line(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        sku: String,
    ) -> ApiResult<Order> {
        edit(ctx, &order_id, checkout::Edit::Remove { sku }).await
    }

    /// Commits the stock, charges the payment once and confirms the order
    /// (its customer or ADMIN). The same idempotency key answers the same order.
    async fn confirm_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        idempotency_key: Option<String>,
        payment_token: Option<String>,
        customer: Option<CustomerInput>,
        notes: Option<String>,
    ) -> ApiResult<Order> {
        let claims = ctx.auth().claims()?;
        let order_id = parse_id("orderId", &order_id)?;
        let input = confirm::Confirmation {
            idempotency_key,
            payment_token,
            customer: customer.unwrap_or_default().into(),
            notes,
            bearer: ctx
                .data_opt::<kit::auth::BearerToken>()
                .map(|t| t.0.clone()),
        };
        Ok(Order::from(
            confirm::confirm(state(ctx), claims, order_id, input).await?,
        ))
    }

    /// Cancels an order: reserved stock is released; a paid order is refunded
    /// and its stock returned; shipped or delivered orders → INVALID_STATE.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        reason: Option<String>,
    ) -> ApiResult<Order> {
        let claims = ctx.auth().claims()?;
        let order_id = parse_id("orderId", &order_id)?;
        Ok(Order::from(
            transitions::cancel(state(ctx), claims, order_id, reason).await?,
        ))
    }

    /// ADMIN: moves an order along its lifecycle (same rules and side effects).
    async fn update_order_status(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        status: OrderStatus,
    ) -> ApiResult<Order> {
        let claims = ctx.auth().require_role(&[Role::Admin])?;
        let order_id = parse_id("orderId", &order_id)?;
        Ok(Order::from(
            transitions::update_status(state(ctx), claims, order_id, status).await?,
        ))
    }

    /// ADMIN: sends a DELIVERY_FAILED order again: it goes back to CONFIRMED
    /// and logistics makes it a new shipment (the failed one stays in its
    /// history). Any other state → INVALID_STATE.
    async fn reship_order(&self, ctx: &Context<'_>, order_id: ID) -> ApiResult<Order> {
        let claims = ctx.auth().require_role(&[Role::Admin])?;
        let order_id = parse_id("orderId", &order_id)?;
        Ok(Order::from(
            failed_delivery::reship(state(ctx), claims, order_id).await?,
        ))
    }

    /// ADMIN: refunds a DELIVERY_FAILED order once (REFUNDED). `goods` says
    /// what became of them: RETURNED go back to stock, LOST are written off.
    /// Any other state → INVALID_STATE.
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        goods: Goods,
        reason: Option<String>,
    ) -> ApiResult<Order> {
        let claims = ctx.auth().require_role(&[Role::Admin])?;
        let order_id = parse_id("orderId", &order_id)?;
        Ok(Order::from(
            failed_delivery::refund(state(ctx), claims, order_id, goods, reason).await?,
        ))
    }
}

pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Every status change of an order committed from now on, in order (its customer or ADMIN).
    async fn order_status_changed(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = OrderStatusEvent> + use<>> {
        let order = visible_order(ctx, &order_id).await?;
        let changes = feed::follow(state(ctx), order.id)
            .await
            .map_err(ApiError::from)?;
        Ok(changes.map(OrderStatusEvent))
    }
}

/// The orders subgraph schema.
pub type OrdersSchema = async_graphql::Schema<Query, Mutation, Subscription>;
