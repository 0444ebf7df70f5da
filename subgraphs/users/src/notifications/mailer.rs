//! E-mailing notifications over SMTP, apart from the event consumer: the
//! consumer only writes PENDING rows, so a mail server that is down slows
//! nothing but mail.
//!
//! The mailer claims due rows with `FOR UPDATE SKIP LOCKED` and leases them
//! (pushes `next_attempt_at` out by `LEASE`) in one short transaction, then
//! sends without holding a transaction or a lock: replicas never pick the
//! same row, and a mailer that dies mid-send leaves its rows to be retried
//! when the lease runs out (a crash between sending and marking sends twice;
//! the Message-ID is the notification's id, so the copies are recognisable).
//!
//! The address is the user's as it is when sending; a user who removed it
//! gets the notification STORED instead. A failed send is retried with
//! exponential backoff ([`backoff`]) until [`MAX_ATTEMPTS`]; a permanent
//! refusal (5xx) fails at once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::config::Env;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use uuid::Uuid;

use super::{Delivery, Notifications};
use crate::{
    db::schema::{notifications, users},
    error::UsersError,
};

/// Tries before a notification is marked FAILED.
pub const MAX_ATTEMPTS: i32 = 8;
/// Rows claimed per round.
const BATCH: i64 = 10;
/// How long a claimed row is left to its mailer: well above a batch of slow
/// sends (each SMTP command may take `SMTP_TIMEOUT`).
const LEASE: Duration = Duration::from_secs(15 * 60);
/// The longest one SMTP command may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);

/// Where notification e-mail goes.
#[derive(Clone)]
pub struct MailConfig {
    /// `SMTP_URL`, e.g. `smtp://127.0.0.1:2525` or `smtp://user:pass@relay:25`
    /// (plain SMTP to a local relay: no TLS is built in). Unset: notifications
    /// are only stored, never e-mailed.
    pub smtp_url: Option<String>,
    /// `SMTP_FROM`, the sender (default `grocery@localhost`).
    pub from: String,
    /// `MAILER_POLL_SECS` (default 5): how often the mailer looks for due mail
    /// besides being woken by new notifications (retries, other replicas).
    pub poll_interval: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "grocery@localhost".into(),
            poll_interval: Duration::from_secs(5),
        }
    }
}

impl MailConfig {
    /// Reads `SMTP_URL`, `SMTP_FROM` and `MAILER_POLL_SECS`, checking the URL and the sender.
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        let cfg = Self {
            smtp_url: env.get("SMTP_URL"),
            from: env.get("SMTP_FROM").unwrap_or(defaults.from),
            poll_interval: Duration::from_secs(env.parse_or("MAILER_POLL_SECS", 5).max(1)),
        };
        if let Err(err) = sender(&cfg.from) {
            env.problem(format!("{err:#}"));
        }
        if let Some(Err(err)) = cfg.smtp_url.as_deref().map(transport) {
            env.problem(format!("{err:#}"));
        }
        cfg
    }
}

/// The `SMTP_FROM` mailbox.
fn sender(from: &str) -> anyhow::Result<Mailbox> {
    from.parse()
        .map_err(|err| anyhow::anyhow!("SMTP_FROM={from:?} is not an e-mail address: {err}"))
}

/// A client for `SMTP_URL` (`smtp://[user:password@]host[:port]`). The URL
/// may hold a password: errors never repeat it.
fn transport(raw: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let bad =
        |why: String| anyhow::anyhow!("SMTP_URL is not a usable URL like smtp://host:25 ({why})");
    let url = url::Url::parse(raw).map_err(|err| bad(err.to_string()))?;
    if url.scheme() != "smtp" {
        return Err(bad(format!(
            "scheme {:?}: only plain smtp:// is supported, e.g. to a local relay",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host".into()))?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(url.port().unwrap_or(25))
        .timeout(Some(SMTP_TIMEOUT));
    if !url.username().is_empty() {
        let password = url.password().unwrap_or_default();
        builder = builder.credentials(Credentials::new(
            percent_decoded(url.username()),
            percent_decoded(password),
        ));
    }
    Ok(builder.build())
}

/// `%XX` escapes of a URL's user or password resolved (anything else kept as it is).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An SMTP client and the sender it writes as.
pub(super) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer `cfg` describes; None without `SMTP_URL`.
    pub(super) fn new(cfg: &MailConfig) -> anyhow::Result<Option<Self>> {
        let from = sender(&cfg.from)?;
        Ok(match &cfg.smtp_url {
            Some(url) => Some(Self {
                transport: transport(url)?,
                from,
            }),
            None => None,
        })
    }

    /// Sends one notification to `address`.
    async fn send(&self, due: &Due, address: &str) -> Result<(), Failure> {
        let to: Mailbox = address.parse().map_err(|err| Failure {
            message: format!("the user's e-mail address cannot be used: {err}"),
            permanent: true,
        })?;
        let domain = self.from.email.domain();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&due.subject)
            .message_id(Some(format!("<{}@{domain}>", due.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(due.body.clone())
            .map_err(|err| Failure {
                message: format!("cannot build the message: {err}"),
                permanent: true,
            })?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|err| Failure {
                message: err.to_string(),
                permanent: err.is_permanent(),
            })
    }
}

/// Why a send failed, and whether trying again could help.
struct Failure {
    message: String,
    permanent: bool,
}

/// A claimed notification, as the mailer needs it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications, check_for_backend(diesel::pg::Pg))]
struct Due {
    id: Uuid,
    user_id: Uuid,
    subject: String,
    body: String,
    attempts: i32,
}

/// How long to wait after the `attempts`-th failed try: 2^attempts seconds, at most 10 minutes.
pub fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 16)).min(MAX_BACKOFF)
}

/// What one round of [`deliver_due`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    /// Failed, to be tried again later.
    pub retrying: usize,
    /// Given up on.
    pub failed: usize,
    /// Kept, not sent: the user has no address any more.
    pub stored: usize,
}

impl Round {
    fn claimed(&self) -> usize {
        self.sent + self.retrying + self.failed + self.stored
    }
}

fn later(from: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    from + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
}

/// Claims up to a batch of due PENDING rows and leases them to this mailer.
async fn claim(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Due>> {
    conn.transaction(async |conn| {
        let now = Utc::now();
        let ids: Vec<Uuid> = notifications::table
            .filter(notifications::delivery.eq(Delivery::Pending.as_str()))
            .filter(notifications::next_attempt_at.le(now))
            .order(notifications::next_attempt_at)
            .limit(BATCH)
            .select(notifications::id)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(notifications::table.filter(notifications::id.eq_any(&ids)))
            .set(notifications::next_attempt_at.eq(later(now, LEASE)))
            .returning(Due::as_returning())
            .get_results(conn)
            .await
    })
    .await
}

/// The current e-mail addresses of the users of `due`.
async fn addresses(
    conn: &mut AsyncPgConnection,
    due: &[Due],
) -> QueryResult<HashMap<Uuid, String>> {
    let ids: Vec<Uuid> = due.iter().map(|d| d.user_id).collect();
    let found: Vec<(Uuid, Option<String>)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::email))
        .load(conn)
        .await?;
    Ok(found
        .into_iter()
        .filter_map(|(id, email)| Some((id, email?)))
        .collect())
}

/// Keeps a notification whose user no longer has an address: nowhere to send it.
async fn store(conn: &mut AsyncPgConnection, due: &Due) -> QueryResult<()> {
    diesel::update(
        notifications::table
            .find(due.id)
            .filter(notifications::delivery.eq(Delivery::Pending.as_str())),
    )
    .set((
        notifications::channel.eq("NONE"),
        notifications::delivery.eq(Delivery::Stored.as_str()),
        notifications::next_attempt_at.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the outcome of one try; returns what became of the row.
async fn settle(
    conn: &mut AsyncPgConnection,
    due: &Due,
    outcome: Result<(), Failure>,
) -> QueryResult<Delivery> {
    let attempts = due.attempts + 1;
    let now = Utc::now();
    let (delivery, next, sent_at, error) = match outcome {
        Ok(()) => (Delivery::Sent, None, Some(now), None),
        Err(f) if f.permanent || attempts >= MAX_ATTEMPTS => {
            (Delivery::Failed, None, None, Some(f.message))
        }
        Err(f) => (
            Delivery::Pending,
            Some(later(now, backoff(attempts))),
            None,
            Some(f.message),
        ),
    };
    let changes = (
        notifications::delivery.eq(delivery.as_str()),
        notifications::attempts.eq(attempts),
        notifications::next_attempt_at.eq(next),
        notifications::sent_at.eq(sent_at),
    );
    let row = notifications::table
        .find(due.id)
        .filter(notifications::delivery.eq(Delivery::Pending.as_str()));
    // A success keeps the last failure's text: it says why mail was late.
    match error {
        Some(error) => {
            diesel::update(row)
                .set((changes, notifications::last_error.eq(error)))
                .execute(conn)
                .await?
        }
        None => diesel::update(row).set(changes).execute(conn).await?,
    };
    Ok(delivery)
}

/// Sends what is due now, one batch; without SMTP nothing is ever due.
pub async fn deliver_due(notifications: &Notifications) -> Result<Round, UsersError> {
    let mut round = Round::default();
    let Some(mailer) = &notifications.mailer else {
        return Ok(round);
    };
    let mut conn = notifications.pool.get().await?;
    let claimed = claim(&mut conn).await?;
    let addresses = addresses(&mut conn, &claimed).await?;
    for due in claimed {
        let Some(address) = addresses.get(&due.user_id) else {
            store(&mut conn, &due).await?;
            round.stored += 1;
            continue;
        };
        let outcome = mailer.send(&due, address).await;
        if let Err(failure) = &outcome {
            tracing::warn!(
                notification = %due.id,
                attempt = due.attempts + 1,
                error = %failure.message,
                "sending a notification failed"
            );
        }
        match settle(&mut conn, &due, outcome).await? {
            Delivery::Sent => round.sent += 1,
            Delivery::Pending => round.retrying += 1,
            _ => round.failed += 1,
        }
    }
    Ok(round)
}

/// Sends due notifications whenever woken and every `interval`, until the
/// task is dropped. Without SMTP it only waits: there is never mail to send.
pub async fn run(notifications: Arc<Notifications>, interval: Duration) {
    if !notifications.emails() {
        tracing::info!("SMTP_URL is not set: notifications are stored, not e-mailed");
        return std::future::pending().await;
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = notifications.wake.notified() => {}
        }
        // A full batch may mean more is due: keep going until a round comes up short.
        loop {
            match deliver_due(&notifications).await {
                Ok(round) => {
                    if round.claimed() > 0 {
                        tracing::info!(
                            sent = round.sent,
                            retrying = round.retrying,
                            failed = round.failed,
                            "notification mail round"
                        );
                    }
                    if round.claimed() < BATCH as usize {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "notification mailer failed; retrying next tick");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(7), Duration::from_secs(128));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(100), MAX_BACKOFF);
    }

    #[test]
    fn configuration_problems_are_named() {
        let mut env = Env::from_fn(|name| match name {
            "SMTP_URL" => Some("http://secret:hunter2@mail".into()),
            "SMTP_FROM" => Some("not an address".into()),
            _ => None,
        });
        let _ = MailConfig::from_env(&mut env);
        let err = env.finish().unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0[0].contains("SMTP_FROM"), "{err}");
        assert!(err.0[1].contains("SMTP_URL"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let mut env =
            Env::from_fn(|name| (name == "SMTP_URL").then(|| "smtp://127.0.0.1:2525".into()));
        let cfg = MailConfig::from_env(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(cfg.from, "grocery@localhost");
        assert!(Mailer::new(&cfg).unwrap().is_some());
    }

    #[test]
    fn smtp_credentials_may_be_percent_encoded() {
        assert_eq!(percent_decoded("p%40ss%2Fw0rd"), "p@ss/w0rd");
        assert_eq!(percent_decoded("100%"), "100%");
        assert!(transport("smtp://mailer:p%40ss@relay.internal:2525").is_ok());
        assert!(transport("smtp://[::1]:25").is_ok());
        assert!(transport("smtps://relay:465").is_err());
        assert!(transport("smtp:relay").is_err());
    }
}
