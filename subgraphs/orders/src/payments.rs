//! Payments: the [`PaymentProvider`] trait every provider implements, the
//! built-in `test` provider (ARCHITECTURE §5b), and the payment rows.
//!
//! Calls carry the order id as the provider's idempotency key, so a retry
//! after a crash is answered with the first outcome instead of a second
//! charge. Within grocery, the order's row lock and the `payments` primary
//! key make sure a second charge is never even attempted.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::{FutureExt, future::BoxFuture};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    db::{
        Payment, Refund,
        schema::{payments, refunds},
    },
    error::OrdersError,
    failed_delivery::Goods,
};

/// What to charge.
#[derive(Clone, Debug)]
pub struct Charge {
    /// Also the idempotency key at the provider.
    pub order_id: Uuid,
    pub amount: Decimal,
    /// The client's payment token (`tok_…`); providers decide what it means.
    pub token: Option<String>,
}

/// How a charge ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved { reference: String, method: String },
    Declined { reason: String },
}

/// The provider could not be reached or failed; nothing was charged.
#[derive(Clone, Debug, thiserror::Error)]
#[error("payment provider error: {0}")]
pub struct ProviderError(pub String);

/// A payment service.
pub trait PaymentProvider: Send + Sync + 'static {
    /// The name stored with each payment (`test`).
    fn name(&self) -> &'static str;
    /// Charges once per order id; a repeat answers the first outcome.
    fn charge(&self, charge: Charge) -> BoxFuture<'_, Result<ChargeOutcome, ProviderError>>;
    /// Refunds the charge of `order_id` in full once; answers the refund's reference.
    fn refund(
        &self,
        order_id: Uuid,
        amount: Decimal,
    ) -> BoxFuture<'_, Result<String, ProviderError>>;
}

/// The built-in provider: approves every payment except `tok_decline`
/// (declined) and `tok_error` (provider unavailable). Keeps its ledger in
/// memory, like a sandbox would, and counts the calls it gets.
#[derive(Default)]
pub struct TestProvider {
    charges: Mutex<HashMap<Uuid, ChargeOutcome>>,
    refunds: Mutex<HashMap<Uuid, String>>,
    charge_calls: AtomicU64,
}

impl TestProvider {
    /// How many times `charge` was called with a token it would approve or
    /// decline, repeats included (what a double charge would show up as).
    pub fn charge_calls(&self) -> u64 {
        AtomicU64::load(&self.charge_calls, Ordering::SeqCst)
    }

    /// How many refunds were made.
    pub fn refunds_made(&self) -> usize {
        self.refunds.lock().map(|r| r.len()).unwrap_or(0)
    }
}

impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn charge(&self, charge: Charge) -> BoxFuture<'_, Result<ChargeOutcome, ProviderError>> {
        let outcome = match charge.token.as_deref() {
            Some("tok_error") => Err(ProviderError(
                "test provider: unavailable (tok_error)".into(),
            )),
            token => {
                self.charge_calls.fetch_add(1, Ordering::SeqCst);
                let mut charges = self.charges.lock().expect("test provider ledger");
                Ok(charges
                    .entry(charge.order_id)
                    .or_insert_with(|| match token {
                        Some("tok_decline") => ChargeOutcome::Declined {
                            reason: "card declined (tok_decline)".into(),
                        },
                        _ => ChargeOutcome::Approved {
                            reference: format!("test_ch_{}", Uuid::new_v4().simple()),
                            method: match token {
                                Some(t) => format!("test card {t}"),
                                None => "test card".into(),
                            },
                        },
                    })
                    .clone())
            }
        };
        async move { outcome }.boxed()
    }

    fn refund(
        &self,
        order_id: Uuid,
        _amount: Decimal,
    ) -> BoxFuture<'_, Result<String, ProviderError>> {
        let reference = self
            .refunds
            .lock()
            .expect("test provider ledger")
            .entry(order_id)
            .or_insert_with(|| format!("test_re_{}", Uuid::new_v4().simple()))
            .clone();
        async move { Ok(reference) }.boxed()
    }
}

/// Payment status as stored.
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";
pub const REFUNDED: &str = "REFUNDED";

/// The payment row of a charge's outcome, as a confirmation writes it along
/// with the order's new status ([`crate::lifecycle::settle`]); at most one
/// per order: the primary key refuses a second.
pub struct Recorded<'a> {
    pub provider: &'a str,
    pub amount: Decimal,
    pub status: &'static str,
    pub method: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub failure: Option<&'a str>,
}

impl<'a> Recorded<'a> {
    /// The `payments` row of `order_id` this writes, stamped `at` when read
    /// as a function (the write's time is known once it is made).
    pub fn row(&self, order_id: Uuid) -> impl Fn(DateTime<Utc>) -> Payment + use<> {
        let mut amount = self.amount;
        // As `numeric(14, 2)` keeps it.
        amount.rescale(2);
        let row = Payment {
            order_id,
            status: self.status.to_owned(),
            amount,
            provider: self.provider.to_owned(),
            method: self.method.map(str::to_owned),
            provider_reference: self.reference.map(str::to_owned),
            failure_reason: self.failure.map(str::to_owned),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        move |at| Payment {
            created_at: at,
            updated_at: at,
            ..row.clone()
        }
    }

    pub fn new(provider: &'a str, charge: &Charge, outcome: &'a ChargeOutcome) -> Self {
        let (status, method, reference, failure) = match outcome {
            ChargeOutcome::Approved { reference, method } => (
                SUCCEEDED,
                Some(method.as_str()),
                Some(reference.as_str()),
                None,
            ),
            ChargeOutcome::Declined { reason } => (FAILED, None, None, Some(reason.as_str())),
        };
        Self {
            provider,
            amount: charge.amount,
            status,
            method,
            reference,
            failure,
        }
    }
}

/// The payment of `order_id`, if any.
pub async fn find(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<Option<Payment>> {
    payments::table
        .find(order_id)
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

/// Payments of several orders. One order is looked up by key: `= ANY` of
/// an array is planned anew on every call.
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    order_ids: &[Uuid],
) -> QueryResult<Vec<Payment>> {
    if let [id] = order_ids {
        return Ok(find(conn, *id).await?.into_iter().collect());
    }
    payments::table
        .filter(payments::order_id.eq_any(order_ids))
        .select(Payment::as_select())
        .load(conn)
        .await
}

/// Refunds of a payment.
pub async fn refunds_of(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<Vec<Refund>> {
    refunds::table
        .filter(refunds::order_id.eq(order_id))
        .select(Refund::as_select())
        .load(conn)
        .await
}

/// Refunds the succeeded payment of `order_id` in full, once: a refund row
/// already there answers as done. `goods` says what became of a failed
/// delivery's goods (none for a cancellation). Returns the refund event's
/// payload, if a refund was made.
pub async fn refund(
    conn: &mut AsyncPgConnection,
    provider: &dyn PaymentProvider,
    order_id: Uuid,
    reason: Option<&str>,
    goods: Option<Goods>,
) -> Result<Option<serde_json::Value>, OrdersError> {
    let Some(payment) = find(conn, order_id).await? else {
        return Ok(None);
    };
    if payment.status != SUCCEEDED {
        return Ok(None);
    }
    let reference = provider
        .refund(order_id, payment.amount)
        .await
        .map_err(|e| {
            tracing::warn!(%order_id, error = %e, "refund failed");
            OrdersError::Unavailable(
                "the payment provider is unavailable; nothing was changed, retry".into(),
            )
        })?;
    diesel::insert_into(refunds::table)
        .values((
            refunds::order_id.eq(order_id),
            refunds::amount.eq(payment.amount),
            refunds::provider_reference.eq(&reference),
            refunds::reason.eq(reason),
            refunds::goods.eq(goods.map(Goods::as_str)),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    diesel::update(payments::table.find(order_id))
        .set((
            payments::status.eq(REFUNDED),
            payments::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(Some(serde_json::json!({
        "orderId": order_id,
        "amount": payment.amount,
        "reference": reference,
        "goods": goods.map(Goods::as_str),
    })))
}
