//! The mailer against a real SMTP conversation ([`SmtpSink`]).

use std::time::Duration;

use chrono::Utc;
use diesel::ExpressionMethods;
use diesel_async::RunQueryDsl;
use kit::testing::wait_until;
use serde_json::json;
use users::{
    Users,
    db::schema::notifications,
    deliver_due,
    notifications::{Delivery, mailer::Round},
};

use crate::{
    smtp_sink::{Behaviour, SmtpSink},
    support::*,
};

#[tokio::test]
async fn a_new_notification_wakes_the_mailer_which_sends_it_over_smtp() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::Accept).await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(Some(sink.url.clone()));
    // Polling hourly: only the consumer's wake-up can make it send within the test.
    let mailer = tokio::spawn(Users::run_mailer(
        notifications.clone(),
        Duration::from_secs(3600),
    ));
    // Its first round is over (it claimed nothing, then looked up no
    // addresses): what is due from now on only a wake-up sends.
    wait_until("the mailer's first round", async || {
        let log = app.log.statements();
        let claim = log.iter().position(|sql| sql.contains("SKIP LOCKED"));
        claim.is_some_and(|at| log[at..].iter().any(|sql| sql.contains("\"email\" FROM")))
    })
    .await;

    app.consumer(&notifications)
        .apply(&order_event(1, &ann, "GR-000042", "CONFIRMED"))
        .await
        .unwrap();
    wait_until("the message", async || !sink.received().is_empty()).await;
    wait_until("the SENT mark", async || {
        app.notification_rows().await[0].delivery == Delivery::Sent
    })
    .await;
    mailer.abort();

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.mail_from, "grocery@localhost");
    assert_eq!(message.rcpt_to, ["ann@example.com"]);
    assert!(
        message
            .data
            .contains("Subject: Order GR-000042 confirmed\r\n"),
        "{}",
        message.data
    );
    assert!(
        message.data.contains("To: ann@example.com\r\n"),
        "{}",
        message.data
    );
    assert!(
        message.data.contains("From: grocery@localhost\r\n"),
        "{}",
        message.data
    );

    let row = &app.notification_rows().await[0];
    assert!(
        message
            .data
            .contains(&format!("Message-ID: <{}@localhost>", row.id)),
        "{}",
        message.data
    );
    // Quoted-printable: long lines are folded with soft breaks.
    let (_, body) = message
        .data
        .split_once("\r\n\r\n")
        .expect("headers, then body");
    assert_eq!(body.replace("=\r\n", "").trim_end(), row.body);
    assert!(row.body.contains("preparing it"), "{}", row.body);
    assert_eq!((row.delivery, row.attempts), (Delivery::Sent, 1));
    assert!(row.sent_at.is_some() && row.next_attempt_at.is_none());
    assert_eq!(row.last_error, None);
}

#[tokio::test]
async fn a_refused_send_stays_pending_and_is_retried_after_a_backoff() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::RefuseRecipient(
        "451 4.3.0 mailbox busy, try later",
    ))
    .await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(Some(sink.url.clone()));
    app.consumer(&notifications)
        .apply(&order_event(1, &ann, "GR-000042", "SHIPPED"))
        .await
        .unwrap();

    let before = Utc::now();
    let round = deliver_due(&notifications).await.unwrap();
    assert_eq!(
        round,
        Round {
            retrying: 1,
            ..Round::default()
        }
    );
    let row = &app.notification_rows().await[0];
    assert_eq!((row.delivery, row.attempts), (Delivery::Pending, 1));
    assert!(
        row.last_error.as_deref().is_some_and(|e| e.contains("451")),
        "{:?}",
        row.last_error
    );
    let next = row.next_attempt_at.expect("a next attempt");
    assert!(
        next >= before + chrono::Duration::seconds(2),
        "{next} vs {before}"
    );
    assert!(next <= Utc::now() + chrono::Duration::seconds(3), "{next}");
    assert!(row.sent_at.is_none());
    assert!(sink.received().is_empty());

    // Not due yet: the next round leaves it alone.
    assert_eq!(deliver_due(&notifications).await.unwrap(), Round::default());
    assert_eq!(app.notification_rows().await[0].attempts, 1);
}

#[tokio::test]
async fn a_server_that_hangs_up_counts_as_a_failed_try() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::HangUp).await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(Some(sink.url.clone()));
    app.consumer(&notifications)
        .apply(&order_event(1, &ann, "GR-000042", "DELIVERED"))
        .await
        .unwrap();

    assert_eq!(deliver_due(&notifications).await.unwrap().retrying, 1);
    let row = &app.notification_rows().await[0];
    assert_eq!((row.delivery, row.attempts), (Delivery::Pending, 1));
    assert!(row.last_error.as_deref().is_some_and(|e| !e.is_empty()));
    assert!(row.next_attempt_at.unwrap() > Utc::now());
}

/// Makes every notification due now, as if its backoff had passed.
async fn make_due(app: &TestApp, attempts: i32) {
    let mut conn = app.pool.get().await.unwrap();
    diesel::update(notifications::table)
        .set((
            notifications::attempts.eq(attempts),
            notifications::next_attempt_at.eq(Utc::now()),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_eighth_failed_try_gives_up() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::RefuseRecipient("451 4.3.0 try later")).await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(Some(sink.url.clone()));
    app.consumer(&notifications)
        .apply(&order_event(1, &ann, "GR-000042", "CANCELLED"))
        .await
        .unwrap();
    make_due(&app, 6).await;
    assert_eq!(deliver_due(&notifications).await.unwrap().retrying, 1);
    assert_eq!(app.notification_rows().await[0].attempts, 7);

    make_due(&app, 7).await;
    assert_eq!(deliver_due(&notifications).await.unwrap().failed, 1);
    let row = &app.notification_rows().await[0];
    assert_eq!((row.delivery, row.attempts), (Delivery::Failed, 8));
    assert_eq!(row.next_attempt_at, None);
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("451")));
}

#[tokio::test]
async fn a_permanent_refusal_fails_at_once() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::RefuseRecipient("550 5.1.1 no such mailbox")).await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(Some(sink.url.clone()));
    app.consumer(&notifications)
        .apply(&order_event(1, &ann, "GR-000042", "PAYMENT_FAILED"))
        .await
        .unwrap();
    assert_eq!(deliver_due(&notifications).await.unwrap().failed, 1);
    let row = &app.notification_rows().await[0];
    assert_eq!((row.delivery, row.attempts), (Delivery::Failed, 1));
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("550")));
}

#[tokio::test]
async fn a_user_who_removed_their_address_before_sending_gets_it_stored() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::Accept).await;
    app.register("fridge-ann").await;
    let ann = app.login("fridge-ann").await;
    let update = "mutation($e: String) { updateProfile(input: { email: $e }) { email } }";
    let set = app
        .gql(Some(&ann.access), update, json!({ "e": "ann@example.com" }))
        .await;
    assert_no_errors(&set);
    let notifications = app.notifications(Some(sink.url.clone()));
    app.consumer(&notifications)
        .apply(&order_event(1, &ann.user_id, "GR-000042", "CONFIRMED"))
        .await
        .unwrap();
    assert_eq!(app.notification_rows().await[0].delivery, Delivery::Pending);

    let cleared = app
        .gql(Some(&ann.access), update, json!({ "e": null }))
        .await;
    assert_no_errors(&cleared);
    assert_eq!(deliver_due(&notifications).await.unwrap().stored, 1);
    assert_eq!(app.notification_rows().await[0].delivery, Delivery::Stored);
    assert_eq!(app.channels().await, ["NONE"]);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn without_smtp_the_mailer_sends_nothing_and_keeps_running() {
    let app = TestApp::new().await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(None);
    app.consumer(&notifications)
        .apply(&order_event(1, &ann, "GR-000042", "CONFIRMED"))
        .await
        .unwrap();
    assert_eq!(deliver_due(&notifications).await.unwrap(), Round::default());
    assert_eq!(app.notification_rows().await[0].delivery, Delivery::Stored);
    // A task that ended would count as a crash of the component.
    let run = Users::run_mailer(notifications, Duration::from_millis(10));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), run)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mailers_running_side_by_side_send_each_notification_once() {
    let app = TestApp::new().await;
    let sink = SmtpSink::start(Behaviour::Accept).await;
    let ann = app
        .customer_with_email("fridge-ann", Some("ann@example.com"))
        .await;
    let notifications = app.notifications(Some(sink.url.clone()));
    let consumer = app.consumer(&notifications);
    const COUNT: usize = 25;
    for i in 0..COUNT {
        let event = order_event(i as i64 + 1, &ann, &format!("GR-{i:06}"), "CONFIRMED");
        consumer.apply(&event).await.unwrap();
    }

    let replicas = (0..3).map(|_| {
        let notifications = notifications.clone();
        tokio::spawn(async move {
            let mut sent = 0;
            loop {
                let round = deliver_due(&notifications).await.unwrap();
                if round == Round::default() {
                    return sent;
                }
                sent += round.sent;
            }
        })
    });
    let mut sent = 0;
    for replica in replicas.collect::<Vec<_>>() {
        sent += replica.await.unwrap();
    }
    assert_eq!(sent, COUNT);
    let received = sink.received();
    assert_eq!(received.len(), COUNT);
    let mut subjects: Vec<_> = received
        .iter()
        .filter_map(|m| m.data.lines().find(|l| l.starts_with("Subject: ")))
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), COUNT, "every message once");
    assert!(
        app.notification_rows()
            .await
            .iter()
            .all(|n| n.delivery == Delivery::Sent && n.attempts == 1)
    );
}
