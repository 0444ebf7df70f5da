//! The object and input types of the orders subgraph.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject,
    connection::{Connection, EmptyFields},
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use kit::{ApiError, ApiResult, auth::AuthExt as _};
use rust_decimal::Decimal;

use super::{ItemsLoader, PaymentLoader, state};
use crate::{
    OrdersState, confirm, db, failed_delivery::Goods, feed::StatusChanged, lifecycle::OrderStatus,
    order, payments,
};

/// A product, owned by the catalog subgraph; orders only refers to it.
#[derive(SimpleObject)]
#[graphql(unresolvable = "sku")]
pub struct Product {
    pub sku: String,
}

/// An order, with what the write that answers with it knows of it.
pub struct Order(pub db::Order, pub order::Known);

impl From<db::Order> for Order {
    fn from(row: db::Order) -> Self {
        Self(row, order::Known::default())
    }
}

impl From<(db::Order, order::Known)> for Order {
    fn from((row, known): (db::Order, order::Known)) -> Self {
        Self(row, known)
    }
}

/// Refuses what a delivery does not need (prices, payments, billing) to a
/// caller that reads orders as a delivery does (see [`order::delivery_only`]).
fn not_for_delivery(ctx: &Context<'_>, what: &str) -> ApiResult<()> {
    match ctx.auth().claims() {
        Ok(claims) if order::delivery_only(claims) => Err(ApiError::Forbidden(format!(
            "a TRUCK sees what a delivery needs of an order, not its {what}"
        ))),
        _ => Ok(()),
    }
}

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Human-readable and unique, e.g. `GR-000123`.
    async fn number(&self) -> &str {
        &self.0.number
    }

    async fn status(&self) -> OrderStatus {
        self.0.status
    }

    /// The customer (resolved by the users subgraph).
    async fn customer(&self) -> super::User {
        super::User {
            id: self.0.customer_id,
        }
    }

    async fn items(&self, ctx: &Context<'_>) -> ApiResult<Vec<OrderItem>> {
        let items = match &self.1.items {
            Some(items) => items.clone(),
            None => {
                let loader = ctx.data_unchecked::<DataLoader<ItemsLoader>>();
                loader.load_one(self.0.id).await?.unwrap_or_default()
            }
        };
        Ok(items.into_iter().map(OrderItem).collect())
    }

    /// Sum of the lines: inventory's estimate while RESERVED, the committed prices once CONFIRMED.
    async fn subtotal(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        not_for_delivery(ctx, "prices")?;
        Ok(self.0.subtotal)
    }

    async fn tax(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        not_for_delivery(ctx, "prices")?;
        Ok(self.0.tax)
    }

    async fn shipping_cost(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        not_for_delivery(ctx, "prices")?;
        Ok(self.0.shipping_cost)
    }

    /// subtotal + tax + shippingCost.
    async fn total(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        not_for_delivery(ctx, "prices")?;
        Ok(self.0.total)
    }

    /// Until when the stock is held (RESERVED orders).
    async fn reserved_until(&self) -> Option<DateTime<Utc>> {
        self.0.reserved_until
    }

    async fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.0.confirmed_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The payment, once the order was charged.
    async fn payment(&self, ctx: &Context<'_>) -> ApiResult<Option<Payment>> {
        not_for_delivery(ctx, "payment")?;
        if let Some(payment) = &self.1.payment {
            return Ok(payment.clone().map(|p| Payment(p, self.1.refunds.clone())));
        }
        let loader = ctx.data_unchecked::<DataLoader<PaymentLoader>>();
        Ok(loader.load_one(self.0.id).await?.map(|p| Payment(p, None)))
    }

    /// Who the order is for, as given at confirmation.
    async fn customer_snapshot(&self) -> Option<CustomerSnapshot> {
        let snapshot: confirm::CustomerSnapshot =
            serde_json::from_value(self.0.customer_snapshot.clone()?).ok()?;
        Some(CustomerSnapshot(snapshot))
    }

    /// The customer's notes.
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }

    async fn cancel_reason(&self) -> Option<&str> {
        self.0.cancel_reason.as_deref()
    }

    /// Every status change, oldest first.
    async fn status_history(&self, ctx: &Context<'_>) -> ApiResult<Vec<OrderStatusChange>> {
        let history = match &self.1.history {
            Some(history) => history.clone(),
            None => order::history_of(&mut *state(ctx).pool.get().await?, self.0.id).await?,
        };
        Ok(history
            .into_iter()
            .map(|h| OrderStatusChange {
                previous_status: h.from_status.and_then(|s| OrderStatus::try_from(s).ok()),
                status: OrderStatus::try_from(h.to_status).unwrap_or(OrderStatus::Reserved),
                reason: h.reason,
                at: h.at,
            })
            .collect())
    }
}

/// One status change in an order's history.
#[derive(SimpleObject)]
pub struct OrderStatusChange {
    pub previous_status: Option<OrderStatus>,
    pub status: OrderStatus,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// One line of an order.
pub struct OrderItem(pub db::Item);

#[Object]
impl OrderItem {
    async fn sku(&self) -> &str {
        &self.0.sku
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity
    }

    /// Line total ÷ quantity, rounded to cents.
    async fn unit_price(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        not_for_delivery(ctx, "prices")?;
        Ok(self.0.unit_price)
    }

    async fn line_total(&self, ctx: &Context<'_>) -> ApiResult<Option<Decimal>> {
        not_for_delivery(ctx, "prices")?;
        Ok(self.0.line_total)
    }

    /// The product's name when the order was confirmed.
    async fn product_name(&self) -> Option<&str> {
        self.0.product_name.as_deref()
    }

    /// The product as the catalog shows it now.
    async fn product(&self) -> Product {
        Product {
            sku: self.0.sku.clone(),
        }
    }
}

/// How a payment ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentStatus {
    Succeeded,
    Failed,
    Refunded,
}

/// The payment of an order, with its refunds when they are known.
pub struct Payment(pub db::Payment, pub Option<Vec<db::Refund>>);

#[Object]
impl Payment {
    async fn status(&self) -> PaymentStatus {
        match self.0.status.as_str() {
            payments::SUCCEEDED => PaymentStatus::Succeeded,
            payments::REFUNDED => PaymentStatus::Refunded,
            _ => PaymentStatus::Failed,
        }
    }

    async fn amount(&self) -> Decimal {
        self.0.amount
    }

    /// How it was paid, as the provider describes it.
    async fn method(&self) -> Option<&str> {
        self.0.method.as_deref()
    }

    /// The payment provider (`test`).
    async fn provider(&self) -> &str {
        &self.0.provider
    }

    async fn provider_reference(&self) -> Option<&str> {
        self.0.provider_reference.as_deref()
    }

    /// Why the provider declined.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn refunds(&self, ctx: &Context<'_>) -> ApiResult<Vec<Refund>> {
        let refunds = match &self.1 {
            Some(refunds) => refunds.clone(),
            None => {
                payments::refunds_of(&mut *state(ctx).pool.get().await?, self.0.order_id).await?
            }
        };
        Ok(refunds
            .into_iter()
            .map(|r| Refund {
                amount: r.amount,
                provider_reference: r.provider_reference,
                reason: r.reason,
                created_at: r.created_at,
                goods: match r.goods.as_deref() {
                    Some("RETURNED") => Some(Goods::Returned),
                    Some("LOST") => Some(Goods::Lost),
                    _ => None,
                },
            })
            .collect())
    }
}

/// Money given back.
#[derive(SimpleObject)]
pub struct Refund {
    pub amount: Decimal,
    pub provider_reference: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// For the refund of a failed delivery: whether its goods were returned to
    /// stock or lost (written off); null for a cancellation's refund.
    pub goods: Option<Goods>,
}

/// A postal address on an order.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "PostalAddressInput")]
pub struct PostalAddress {
    /// Who receives it, if not the customer.
    pub name: Option<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

impl From<PostalAddress> for confirm::Address {
    fn from(a: PostalAddress) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

impl From<confirm::Address> for PostalAddress {
    fn from(a: confirm::Address) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// Contact and addresses for `confirmOrder`. What is left out comes from the customer's profile
/// (users); the billing address defaults to the shipping address.
#[derive(InputObject, Default)]
pub struct CustomerInput {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub shipping_address: Option<PostalAddress>,
    pub billing_address: Option<PostalAddress>,
}

impl From<CustomerInput> for confirm::Customer {
    fn from(c: CustomerInput) -> Self {
        Self {
            email: c.email,
            phone: c.phone,
            shipping_address: c.shipping_address.map(Into::into),
            billing_address: c.billing_address.map(Into::into),
        }
    }
}

/// Who an order was for, as given at confirmation.
pub struct CustomerSnapshot(confirm::CustomerSnapshot);

#[Object]
impl CustomerSnapshot {
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }

    async fn email(&self, ctx: &Context<'_>) -> ApiResult<Option<&str>> {
        not_for_delivery(ctx, "customer's e-mail")?;
        Ok(self.0.details.email.as_deref())
    }

    async fn phone(&self) -> Option<&str> {
        self.0.details.phone.as_deref()
    }

    async fn shipping_address(&self) -> Option<PostalAddress> {
        self.0.details.shipping_address.clone().map(Into::into)
    }

    async fn billing_address(&self, ctx: &Context<'_>) -> ApiResult<Option<PostalAddress>> {
        not_for_delivery(ctx, "billing address")?;
        Ok(self.0.details.billing_address.clone().map(Into::into))
    }
}

/// Some units of one product.
#[derive(InputObject)]
pub struct OrderLineInput {
    pub sku: String,
    pub quantity: i32,
}

/// Extra fields of an order connection.
#[derive(SimpleObject)]
pub struct OrderConnectionFields {
    /// Orders matching the filter, on every page.
    pub total_count: i64,
}

/// A page of orders, newest first.
pub type OrderConnection = Connection<String, Order, OrderConnectionFields, EmptyFields>;

/// A committed status change of an order.
pub struct OrderStatusEvent(pub StatusChanged);

#[Object]
impl OrderStatusEvent {
    /// The order as it is now.
    async fn order(&self, ctx: &Context<'_>) -> ApiResult<Order> {
        let st: &Arc<OrdersState> = ctx.data_unchecked();
        let mut conn = st.pool.get().await?;
        order::find(&mut conn, self.0.order_id)
            .await?
            .map(Order::from)
            .ok_or_else(|| ApiError::NotFound("no such order".into()))
    }

    async fn previous_status(&self) -> Option<OrderStatus> {
        self.0.previous
    }

    async fn status(&self) -> OrderStatus {
        self.0.status
    }

    /// When the change was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}
