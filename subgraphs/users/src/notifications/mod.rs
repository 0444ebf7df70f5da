//! Notifications: what users are told about their orders and shipments.
//!
//! [`events::NotificationsHandler`] makes them from other subgraphs' events,
//! one per event and user, inside the transaction that records the event as
//! processed. Users own their contact details, so this subgraph decides the
//! channel: e-mail (PENDING until [`mailer`] sent it) when the user has an
//! address and SMTP is configured, otherwise the notification is only STORED.
//! Either way users read them as `User.notifications`.

pub mod events;
pub mod mailer;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kit::{db::PgPool, pagination::Page};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    db::{
        Notification,
        schema::{notifications, users},
    },
    error::UsersError,
};
pub use mailer::MailConfig;
use mailer::Mailer;

/// What a notification is about.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// The order was paid and is being prepared.
    OrderConfirmed,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    /// The payment was declined; the order was not placed.
    PaymentFailed,
    /// The shipment could not be delivered.
    ShipmentFailed,
    /// The delivery failed and the payment was refunded.
    OrderRefunded,
}

impl NotificationKind {
    /// Every kind, for tests and docs.
    pub const ALL: [NotificationKind; 7] = [
        Self::OrderConfirmed,
        Self::OrderShipped,
        Self::OrderDelivered,
        Self::OrderCancelled,
        Self::PaymentFailed,
        Self::ShipmentFailed,
        Self::OrderRefunded,
    ];

    /// The stored (and GraphQL) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderConfirmed => "ORDER_CONFIRMED",
            Self::OrderShipped => "ORDER_SHIPPED",
            Self::OrderDelivered => "ORDER_DELIVERED",
            Self::OrderCancelled => "ORDER_CANCELLED",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::ShipmentFailed => "SHIPMENT_FAILED",
            Self::OrderRefunded => "ORDER_REFUNDED",
        }
    }
}

impl TryFrom<String> for NotificationKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown notification kind {s:?}"))
    }
}

/// Where a notification is on its way to the user.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[graphql(name = "NotificationDelivery")]
pub enum Delivery {
    /// Waiting for the mailer (first try or a retry).
    Pending,
    /// E-mailed.
    Sent,
    /// E-mailing was given up on.
    Failed,
    /// Kept for the user to read, not e-mailed (no address, or no SMTP).
    Stored,
}

impl Delivery {
    /// Every state, for tests and docs.
    pub const ALL: [Delivery; 4] = [Self::Pending, Self::Sent, Self::Failed, Self::Stored];

    /// The stored (and GraphQL) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
            Self::Stored => "STORED",
        }
    }
}

impl TryFrom<String> for Delivery {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown delivery state {s:?}"))
    }
}

/// What the event handler and the mailer share.
pub struct Notifications {
    pub pool: PgPool,
    /// None without `SMTP_URL`: every notification is only stored.
    mailer: Option<Mailer>,
    /// Wakes the mailer after a commit that may have made e-mail.
    wake: Notify,
}

impl Notifications {
    /// Notifications over `pool`, e-mailed as `mail` says.
    pub fn new(pool: PgPool, mail: &MailConfig) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            mailer: Mailer::new(mail)?,
            wake: Notify::new(),
        })
    }

    /// Whether notifications can be e-mailed at all (SMTP is configured).
    pub fn emails(&self) -> bool {
        self.mailer.is_some()
    }

    /// Tells the mailer to look for due mail now; a wake while it is busy is kept.
    pub fn wake_mailer(&self) {
        self.wake.notify_one();
    }
}

/// A notification to make: for whom, about what, saying what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub order_id: Option<Uuid>,
    pub order_number: Option<String>,
    pub subject: String,
    pub body: String,
}

/// Writes the notification of event `(source, event_id)` in the caller's
/// transaction: to be e-mailed (PENDING) when `email` is on and the user has
/// an address, STORED otherwise. False (and nothing written) when the user does
/// not exist.
pub async fn record(
    conn: &mut AsyncPgConnection,
    email: bool,
    source: &str,
    event_id: i64,
    draft: Draft,
) -> QueryResult<bool> {
    let address: Option<Option<String>> = users::table
        .find(draft.user_id)
        .select(users::email)
        .first(conn)
        .await
        .optional()?;
    let Some(address) = address else {
        return Ok(false);
    };
    let (channel, delivery, next_attempt_at) = match (email, address) {
        (true, Some(_)) => ("EMAIL", Delivery::Pending, Some(Utc::now())),
        _ => ("NONE", Delivery::Stored, None),
    };
    diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(Uuid::now_v7()),
            notifications::user_id.eq(draft.user_id),
            notifications::source.eq(source),
            notifications::event_id.eq(event_id),
            notifications::kind.eq(draft.kind.as_str()),
            notifications::order_id.eq(draft.order_id),
            notifications::order_number.eq(draft.order_number),
            notifications::subject.eq(draft.subject),
            notifications::body.eq(draft.body),
            notifications::channel.eq(channel),
            notifications::delivery.eq(delivery.as_str()),
            notifications::next_attempt_at.eq(next_attempt_at),
        ))
        // The consumer's processed_events already makes this once per event;
        // the key makes it once per event even across consumer groups.
        .on_conflict((
            notifications::user_id,
            notifications::source,
            notifications::event_id,
        ))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(true)
}

/// The number of an order as an earlier notification of `user_id` named it.
pub async fn known_order_number(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    order_id: Uuid,
) -> QueryResult<Option<String>> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::order_id.eq(order_id))
        .filter(notifications::order_number.is_not_null())
        .select(notifications::order_number)
        .first::<Option<String>>(conn)
        .await
        .optional()
        .map(Option::flatten)
}

/// The notifications of `user_id`, newest first (ids are UUIDv7), `first`
/// after the notification `after`.
pub async fn list(
    pool: &PgPool,
    user_id: Uuid,
    first: i64,
    after: Option<Uuid>,
) -> Result<Page<Notification>, UsersError> {
    let mut conn = pool.get().await?;
    // One snapshot, so totalCount agrees with the page.
    let (total_count, items) = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let mine = || notifications::table.filter(notifications::user_id.eq(user_id));
            let total_count: i64 = mine().count().get_result(conn).await?;
            let mut page = mine().into_boxed();
            if let Some(after) = after {
                page = page.filter(notifications::id.lt(after));
            }
            let items: Vec<Notification> = page
                .order(notifications::id.desc())
                .limit(first + 1)
                .select(Notification::as_select())
                .load(conn)
                .await?;
            Ok::<_, diesel::result::Error>((total_count, items))
        })
        .await?;
    Ok(Page::from_overfetch(items, first, total_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for kind in NotificationKind::ALL {
            assert_eq!(
                NotificationKind::try_from(kind.as_str().to_owned()),
                Ok(kind)
            );
        }
        for delivery in Delivery::ALL {
            assert_eq!(
                Delivery::try_from(delivery.as_str().to_owned()),
                Ok(delivery)
            );
        }
        assert!(Delivery::try_from("LOST".to_owned()).is_err());
    }
}
