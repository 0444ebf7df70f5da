//! What orders adds to a customer: `User.orders`, `User.cart`, and the cart's types.

use async_graphql::{ComplexObject, Context, ID, Object, SimpleObject};
use kit::{ApiResult, auth::AuthExt};
use rust_decimal::Decimal;

use super::{OrderConnection, Product, state};
use crate::{cart, lifecycle::OrderStatus, listing};

/// The cart, priced now.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// Sum of the priced lines.
    pub subtotal: Decimal,
}

#[ComplexObject]
impl Cart {
    /// Units in the cart.
    async fn item_count(&self) -> i32 {
        self.lines.iter().map(|l| l.quantity).sum()
    }
}

impl From<cart::Cart> for Cart {
    fn from(c: cart::Cart) -> Self {
        Self {
            subtotal: c.subtotal,
            lines: c
                .lines
                .into_iter()
                .map(|l| CartLine {
                    product: Product { sku: l.sku.clone() },
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    line_total: l.line_total,
                    available: l.available,
                })
                .collect(),
        }
    }
}

/// A cart line at today's price.
#[derive(SimpleObject)]
pub struct CartLine {
    pub sku: String,
    pub quantity: i32,
    /// Null when not enough is in stock.
    pub unit_price: Option<Decimal>,
    pub line_total: Option<Decimal>,
    /// Units that could be ordered now, when fewer than `quantity`.
    pub available: Option<i32>,
    pub product: Product,
}

/// A user, owned by the users subgraph; orders adds their orders and cart.
pub struct User {
    pub id: uuid::Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The user's orders, newest first (the user or ADMIN).
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
    ) -> ApiResult<OrderConnection> {
        ctx.auth().require_self_or_admin(self.id)?;
        let filter = listing::OrderFilter {
            customer: Some(self.id),
            status,
        };
        super::order_page(state(ctx), &filter, first, after).await
    }

    /// The user's cart, priced now (the user or ADMIN).
    async fn cart(&self, ctx: &Context<'_>) -> ApiResult<Cart> {
        ctx.auth().require_self_or_admin(self.id)?;
        Ok(cart::priced(state(ctx), self.id).await?.into())
    }
}
