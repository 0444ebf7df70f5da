//! Accounts: registration, profiles, roles, activation and admin listing.
//!
//! Uniqueness of device ids and e-mail addresses is the database's job (unique
//! indexes); this module turns their violations into `CONFLICT` errors, so two
//! concurrent registrations can never both succeed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{
    auth::Role,
    change::Change,
    db::{PgPool, contains_pattern},
    error::is_unique_violation,
    pagination::Page,
};
use uuid::Uuid;

use crate::{
    access,
    db::{Account, schema::users},
    error::UsersError,
    password,
    profile::{Address, PaymentMethod, normalize_email, normalize_phone},
    sessions,
};

/// What `register` needs; normalised and checked there.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub device_id: String,
    pub password: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
}

/// Trimmed, 1–50 printable characters.
pub fn normalize_device_id(raw: &str) -> Result<String, UsersError> {
    let device_id = raw.trim();
    if device_id.is_empty() {
        return Err(UsersError::invalid(
            "deviceId",
            "deviceId must not be empty",
        ));
    }
    if device_id.chars().count() > 50 || device_id.chars().any(char::is_control) {
        return Err(UsersError::invalid(
            "deviceId",
            "deviceId must be at most 50 printable characters",
        ));
    }
    Ok(device_id.to_owned())
}

fn optional<T>(
    raw: Option<&str>,
    normalize: impl Fn(&str) -> Result<T, UsersError>,
) -> Result<Option<T>, UsersError> {
    raw.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(normalize)
        .transpose()
}

fn conflict(err: diesel::result::Error, device_id: &str) -> UsersError {
    if is_unique_violation(&err, "users_device_id_key") {
        UsersError::DeviceIdTaken(device_id.to_owned())
    } else if is_unique_violation(&err, "users_email_key") {
        UsersError::EmailTaken
    } else {
        UsersError::Database(err)
    }
}

/// Creates an account; `CONFLICT` when the device id or e-mail is taken.
pub async fn register(pool: &PgPool, new: NewAccount) -> Result<Account, UsersError> {
    let device_id = normalize_device_id(&new.device_id)?;
    password::check_policy(&new.password)?;
    let email = optional(new.email.as_deref(), normalize_email)?;
    let phone = optional(new.phone.as_deref(), normalize_phone)?;
    let hash = password::hash(new.password).await?;
    let mut conn = pool.get().await?;
    diesel::insert_into(users::table)
        .values((
            users::id.eq(Uuid::now_v7()),
            users::device_id.eq(&device_id),
            users::email.eq(&email),
            users::phone.eq(&phone),
            users::role.eq(new.role.as_str()),
            users::password_hash.eq(hash),
        ))
        .returning(Account::as_returning())
        .get_result(&mut conn)
        .await
        .map_err(|e| conflict(e, &device_id))
}

/// Creates the account unless its device id exists (demo seeding); true when created.
pub async fn ensure(pool: &PgPool, new: NewAccount) -> Result<bool, UsersError> {
    match register(pool, new).await {
        Ok(_) => Ok(true),
        Err(UsersError::DeviceIdTaken(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One account by id.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Account>, UsersError> {
    let mut conn = pool.get().await?;
    Ok(users::table
        .find(id)
        .select(Account::as_select())
        .first(&mut conn)
        .await
        .optional()?)
}

/// Many accounts by id in one query (entity batches, data loaders).
pub async fn find_many(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Account>, UsersError> {
    let mut conn = pool.get().await?;
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select(Account::as_select())
        .load(&mut conn)
        .await?)
}

/// Which accounts an admin listing shows.
#[derive(Clone, Debug, Default)]
pub struct AccountFilter {
    /// Case-insensitive substring of the device id or e-mail.
    pub search: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// Accounts in creation order (ids are UUIDv7), `first` after the account `after`.
pub async fn list(
    pool: &PgPool,
    filter: &AccountFilter,
    first: i64,
    after: Option<Uuid>,
) -> Result<Page<Account>, UsersError> {
    let filtered = || {
        let mut query = users::table.into_boxed();
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let pattern = contains_pattern(search);
            query = query.filter(
                users::device_id
                    .ilike(pattern.clone())
                    .or(users::email.ilike(pattern)),
            );
        }
        if let Some(role) = filter.role {
            query = query.filter(users::role.eq(role.as_str()));
        }
        if let Some(active) = filter.active {
            query = query.filter(users::active.eq(active));
        }
        query
    };
    let mut conn = pool.get().await?;
    // One snapshot, so totalCount agrees with the page.
    let (total_count, items) = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let total_count: i64 = filtered().count().get_result(conn).await?;
            let mut page = filtered();
            if let Some(after) = after {
                page = page.filter(users::id.gt(after));
            }
            let items: Vec<Account> = page
                .order(users::id)
                .limit(first + 1)
                .select(Account::as_select())
                .load(conn)
                .await?;
            Ok::<_, diesel::result::Error>((total_count, items))
        })
        .await?;
    Ok(Page::from_overfetch(items, first, total_count))
}

/// Changes to a profile; `Keep` fields are left alone.
#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub email: Change<String>,
    pub phone: Change<String>,
    pub shipping_address: Change<Address>,
    pub billing_address: Change<Address>,
    pub payment_method: Change<PaymentMethod>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct ProfileChangeset {
    email: Option<Option<String>>,
    phone: Option<Option<String>>,
    shipping_address: Option<Option<serde_json::Value>>,
    billing_address: Option<Option<serde_json::Value>>,
    payment_method_token: Option<Option<String>>,
    payment_method_label: Option<Option<String>>,
    updated_at: DateTime<Utc>,
}

fn column<T>(change: Change<T>) -> Option<Option<T>> {
    match change {
        Change::Keep => None,
        Change::Clear => Some(None),
        Change::Set(v) => Some(Some(v)),
    }
}

/// Checks an address; errors name the input field (`shippingAddress` / `billingAddress`).
fn address_json(field: &'static str, address: Address) -> Result<serde_json::Value, UsersError> {
    let normalized = address.normalized().map_err(|e| match e {
        UsersError::Invalid { message, .. } => UsersError::Invalid { field, message },
        other => other,
    })?;
    serde_json::to_value(normalized).map_err(|e| UsersError::Internal(e.into()))
}

/// Applies `update` to the profile of `user_id`; every field is checked before anything is written.
pub async fn update_profile(
    pool: &PgPool,
    user_id: Uuid,
    update: ProfileUpdate,
) -> Result<Account, UsersError> {
    let email = update.email.try_map(|e| normalize_email(&e))?;
    let phone = update.phone.try_map(|p| normalize_phone(&p))?;
    let shipping = update
        .shipping_address
        .try_map(|a| address_json("shippingAddress", a))?;
    let billing = update
        .billing_address
        .try_map(|a| address_json("billingAddress", a))?;
    let payment = update.payment_method.try_map(PaymentMethod::normalized)?;
    let (token, label) = match payment {
        Change::Keep => (None, None),
        Change::Clear => (Some(None), Some(None)),
        Change::Set(method) => (Some(Some(method.token)), Some(method.label)),
    };
    let changes = ProfileChangeset {
        email: column(email),
        phone: column(phone),
        shipping_address: column(shipping),
        billing_address: column(billing),
        payment_method_token: token,
        payment_method_label: label,
        updated_at: Utc::now(),
    };
    let mut conn = pool.get().await?;
    diesel::update(users::table.find(user_id))
        .set(changes)
        .returning(Account::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(|e| conflict(e, ""))?
        .ok_or(UsersError::NotFound)
}

/// Gives `user_id` the role `role`; an admin cannot change their own role.
/// Tokens signed before stop working everywhere (an access change).
pub async fn set_role(
    pool: &PgPool,
    access_ttl: Duration,
    actor: Uuid,
    user_id: Uuid,
    role: Role,
) -> Result<Account, UsersError> {
    if actor == user_id {
        return Err(UsersError::NotAllowed("you cannot change your own role"));
    }
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        diesel::update(users::table.find(user_id))
            .set((
                users::role.eq(role.as_str()),
                users::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        access::bump(conn, user_id, access_ttl).await?;
        reload(conn, user_id).await
    })
    .await
}

/// The account as this transaction sees it.
async fn reload(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<Account, UsersError> {
    users::table
        .find(user_id)
        .select(Account::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(UsersError::NotFound)
}

/// Deactivates (revoking every live refresh token in the same transaction) or
/// reactivates; either is an access change, so tokens signed before stop working.
pub async fn set_active(
    pool: &PgPool,
    access_ttl: Duration,
    actor: Uuid,
    user_id: Uuid,
    active: bool,
) -> Result<Account, UsersError> {
    if actor == user_id && !active {
        return Err(UsersError::NotAllowed("you cannot deactivate yourself"));
    }
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        diesel::update(users::table.find(user_id))
            .set((users::active.eq(active), users::updated_at.eq(Utc::now())))
            .execute(conn)
            .await?;
        if !active {
            sessions::revoke_all_for_user(conn, user_id).await?;
        }
        access::bump(conn, user_id, access_ttl).await?;
        reload(conn, user_id).await
    })
    .await
}
