//! Access changes: what takes powers away from tokens already handed out.
//!
//! A role change, a deactivation or reactivation, logging out everywhere and
//! a new password each move the account to its next *access epoch* and, in
//! the same transaction, write a `user.access_changed` event to the outbox.
//! Every process keeps the newest epoch of recently changed accounts
//! ([`kit::auth::Revocations`]) and refuses access tokens of older ones; it
//! loads [`recent`] when it starts and follows the events after that.
//!
//! The epoch is bumped by an `UPDATE` of the account row, which waits for
//! every login and refresh holding that row (they read it `FOR SHARE` and
//! sign inside that transaction): whatever was signed before has the old
//! epoch, whatever is signed after has the new one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{
    auth::{AccessChange, Role, revocation::ACCESS_CHANGED},
    db::PgPool,
    events::{NewEvent, outbox},
};
use uuid::Uuid;

use crate::{
    db::schema::users,
    error::UsersError,
    password,
    sessions::{self, Session, TokenIssuer},
};

/// Kept beyond the access-token lifetime: the verifiers' 5 s leeway on
/// `exp`, and clocks of other hosts that run a little behind.
const MARGIN: Duration = Duration::from_secs(60);

/// How long a cut-off matters after the change.
fn lifetime(access_ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(access_ttl + MARGIN).unwrap_or(chrono::Duration::days(1))
}

type Row = (Uuid, i64, Option<DateTime<Utc>>, String, bool);

const ROW: (
    users::id,
    users::access_epoch,
    users::access_changed_at,
    users::role,
    users::active,
) = (
    users::id,
    users::access_epoch,
    users::access_changed_at,
    users::role,
    users::active,
);

fn change((user, epoch, at, role, active): Row, access_ttl: Duration) -> AccessChange {
    let at = at.unwrap_or_else(Utc::now);
    AccessChange {
        user,
        epoch,
        at,
        until: at + lifetime(access_ttl),
        // The column's CHECK constraint admits only known names.
        role: role.parse().unwrap_or(Role::Customer).into(),
        active,
    }
}

/// Moves `user_id` to its next access epoch and writes the event, inside the
/// caller's transaction (after the change it describes, so the event carries
/// the new role and active flag).
pub(crate) async fn bump(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    access_ttl: Duration,
) -> Result<AccessChange, UsersError> {
    let row: Row = diesel::update(users::table.find(user_id))
        .set((
            users::access_epoch.eq(users::access_epoch + 1),
            users::access_changed_at.eq(diesel::dsl::now),
        ))
        .returning(ROW)
        .get_result(conn)
        .await
        .optional()?
        .ok_or(UsersError::NotFound)?;
    let change = change(row, access_ttl);
    outbox::append(
        conn,
        &[NewEvent {
            topic: ACCESS_CHANGED,
            key: user_id.to_string(),
            payload: serde_json::to_value(&change).map_err(|e| UsersError::Internal(e.into()))?,
        }],
    )
    .await?;
    Ok(change)
}

/// Every change whose cut-off still matters, oldest first: what a process
/// loads when it starts.
pub async fn recent(pool: &PgPool, access_ttl: Duration) -> Result<Vec<AccessChange>, UsersError> {
    let since = Utc::now() - lifetime(access_ttl);
    let mut conn = pool.get().await?;
    let rows: Vec<Row> = users::table
        .filter(users::access_changed_at.gt(since))
        .order(users::access_changed_at)
        .select(ROW)
        .load(&mut conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| change(row, access_ttl))
        .collect())
}

/// Ends every session of `user_id`: refresh tokens are revoked and access
/// tokens stop working everywhere within a second.
pub async fn logout_all(
    pool: &PgPool,
    user_id: Uuid,
    access_ttl: Duration,
) -> Result<AccessChange, UsersError> {
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let change = bump(conn, user_id, access_ttl).await?;
        sessions::revoke_all_for_user(conn, user_id).await?;
        Ok(change)
    })
    .await
}

/// Replaces the password of `user_id` after checking the current one, ends
/// every session, and opens a new one for the caller.
pub async fn change_password(
    pool: &PgPool,
    issuer: &TokenIssuer,
    user_id: Uuid,
    current: String,
    new: String,
) -> Result<Session, UsersError> {
    password::check_policy(&new).map_err(|e| match e {
        UsersError::Invalid { message, .. } => UsersError::invalid("newPassword", message),
        other => other,
    })?;
    let stored: Option<String> = {
        let mut conn = pool.get().await?;
        users::table
            .find(user_id)
            .select(users::password_hash)
            .first(&mut conn)
            .await
            .optional()?
    };
    if !password::verify(current, stored).await? {
        return Err(UsersError::invalid(
            "currentPassword",
            "the current password is wrong",
        ));
    }
    let hash = password::hash(new).await?;
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        diesel::update(users::table.find(user_id))
            .set((
                users::password_hash.eq(hash),
                users::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        sessions::revoke_all_for_user(conn, user_id).await?;
        bump(conn, user_id, issuer.access_ttl()).await?;
        // Read again: the new session is signed in the new epoch.
        let account = sessions::lock_account(conn, user_id).await?;
        if !account.active {
            return Err(UsersError::Deactivated);
        }
        sessions::issue(conn, issuer, account, Uuid::new_v4()).await
    })
    .await
}
