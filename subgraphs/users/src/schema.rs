//! The users subgraph's GraphQL surface. Resolvers are thin: they check who
//! is calling, translate GraphQL input into domain values and call
//! [`accounts`], [`sessions`] or [`notifications`].

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    ComplexObject, Context, EmptySubscription, ID, InputObject, MaybeUndefined, Object,
    SimpleObject,
    connection::{Connection, Edge, EmptyFields},
    dataloader::{DataLoader, Loader},
};
use chrono::{DateTime, Utc};
use kit::{
    ApiError, ApiResult,
    auth::{Auth, AuthExt, Role},
    db::PgPool,
    events::Relay,
    pagination::{decode_cursor, encode_cursor, page_size},
    server::ClientAddress,
};
use uuid::Uuid;

use crate::{
    access,
    accounts::{self, AccountFilter, NewAccount, ProfileUpdate},
    db::{self, Account},
    error::UsersError,
    notifications::{self, Delivery, NotificationKind},
    profile,
    sessions::{self, TokenIssuer},
    throttle::ThrottleConfig,
};

/// Shared by every resolver: the pool, the token issuer, the relay of the
/// outbox (woken after an access change commits) and the login throttle's settings.
pub struct UsersState {
    pub pool: PgPool,
    pub issuer: Arc<TokenIssuer>,
    pub relay: Relay,
    pub throttle: ThrottleConfig,
}

/// Batches user lookups (entity references, `me`) into one query.
pub struct UserLoader(pub PgPool);

impl Loader<Uuid> for UserLoader {
    type Value = Account;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Account>, ApiError> {
        let found = accounts::find_many(&self.0, keys).await?;
        Ok(found.into_iter().map(|a| (a.id, a)).collect())
    }
}

fn state<'a>(ctx: &'a Context<'_>) -> &'a UsersState {
    ctx.data_unchecked::<UsersState>()
}

async fn load_user(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<User>> {
    let loader = ctx.data_unchecked::<DataLoader<UserLoader>>();
    Ok(loader.load_one(id).await?.map(User::new))
}

/// The caller as stored now: access tokens live 15 minutes, so powers that
/// matter are checked against the account row, not only the token's claims.
async fn live_caller(ctx: &Context<'_>, roles: &[Role]) -> ApiResult<Account> {
    let claims = ctx.auth().require_role(roles)?;
    let account = ctx
        .data_unchecked::<DataLoader<UserLoader>>()
        .load_one(claims.sub)
        .await?
        .filter(|a| a.active)
        .ok_or_else(|| ApiError::Unauthenticated("this account is deactivated".into()))?;
    if !roles.contains(&account.role()) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not do this",
            account.role().as_str()
        )));
    }
    Ok(account)
}

const ANY_ROLE: &[Role] = &[Role::Customer, Role::Truck, Role::Partner, Role::Admin];

fn parse_id(field: &str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_input(field, format!("{:?} is not a valid id", id.as_str())))
}

/// The id inside an `after` cursor of a listing keyed by id.
fn id_cursor(after: Option<&str>) -> ApiResult<Option<Uuid>> {
    after
        .map(|cursor| {
            Uuid::parse_str(&decode_cursor(cursor)?)
                .map_err(|_| ApiError::bad_input("after", "invalid cursor"))
        })
        .transpose()
}

/// An account as clients see it. Contact details are private to the user and
/// admins; `owner_view` marks results handed to the account's own holder
/// (`register`, `login`, `refreshSession`) before they hold an access token.
pub struct User {
    account: Account,
    owner_view: bool,
}

impl User {
    fn new(account: Account) -> Self {
        Self {
            account,
            owner_view: false,
        }
    }

    fn owned(account: Account) -> Self {
        Self {
            account,
            owner_view: true,
        }
    }

    fn check_private(&self, ctx: &Context<'_>) -> ApiResult<()> {
        if !self.owner_view {
            ctx.auth().require_self_or_admin(self.account.id)?;
        }
        Ok(())
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.account.id.to_string())
    }

    async fn device_id(&self) -> &str {
        &self.account.device_id
    }

    async fn role(&self) -> Role {
        self.account.role()
    }

    /// False once an admin deactivated the account.
    async fn active(&self) -> bool {
        self.account.active
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.account.created_at
    }

    /// Visible to the user and admins.
    async fn email(&self, ctx: &Context<'_>) -> ApiResult<Option<&str>> {
        self.check_private(ctx)?;
        Ok(self.account.email.as_deref())
    }

    /// Visible to the user and admins.
    async fn phone(&self, ctx: &Context<'_>) -> ApiResult<Option<&str>> {
        self.check_private(ctx)?;
        Ok(self.account.phone.as_deref())
    }

    /// Visible to the user and admins.
    async fn shipping_address(&self, ctx: &Context<'_>) -> ApiResult<Option<Address>> {
        self.check_private(ctx)?;
        Ok(self.account.shipping_address().map(Address::from))
    }

    /// Visible to the user and admins.
    async fn billing_address(&self, ctx: &Context<'_>) -> ApiResult<Option<Address>> {
        self.check_private(ctx)?;
        Ok(self.account.billing_address().map(Address::from))
    }

    /// Visible to the user and admins.
    async fn default_payment_method(&self, ctx: &Context<'_>) -> ApiResult<Option<PaymentMethod>> {
        self.check_private(ctx)?;
        Ok(self.account.payment_method().map(|m| PaymentMethod {
            token: m.token,
            label: m.label,
        }))
    }

    /// What the user was told about their orders, newest first; the user and admins.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<NotificationConnection> {
        self.check_private(ctx)?;
        let first = page_size(first, 20)?;
        let after = id_cursor(after.as_deref())?;
        let page = notifications::list(&state(ctx).pool, self.account.id, first, after).await?;
        let mut connection = NotificationConnection::with_additional_fields(
            after.is_some(),
            page.has_next_page,
            NotificationConnectionFields {
                total_count: page.total_count,
            },
        );
        connection.edges.extend(
            page.items
                .into_iter()
                .map(|n| Edge::new(encode_cursor(&n.id.to_string()), Notification::from(n))),
        );
        Ok(connection)
    }
}

/// Something a user was told, e.g. that their order shipped.
#[derive(SimpleObject)]
pub struct Notification {
    pub id: ID,
    pub kind: NotificationKind,
    pub subject: String,
    pub body: String,
    pub order_id: Option<ID>,
    pub order_number: Option<String>,
    /// E-mailed, waiting to be, given up on, or only kept here.
    pub delivery: Delivery,
    pub created_at: DateTime<Utc>,
    /// When it was e-mailed.
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<db::Notification> for Notification {
    fn from(n: db::Notification) -> Self {
        Self {
            id: ID(n.id.to_string()),
            kind: n.kind,
            subject: n.subject,
            body: n.body,
            order_id: n.order_id.map(|id| ID(id.to_string())),
            order_number: n.order_number,
            delivery: n.delivery,
            created_at: n.created_at,
            sent_at: n.sent_at,
        }
    }
}

/// Extra fields of the `notifications` connection.
#[derive(SimpleObject)]
pub struct NotificationConnectionFields {
    /// The user's notifications, on every page.
    pub total_count: i64,
}

pub type NotificationConnection =
    Connection<String, Notification, NotificationConnectionFields, EmptyFields>;

/// A postal address.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "AddressInput")]
pub struct Address {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

impl From<profile::Address> for Address {
    fn from(a: profile::Address) -> Self {
        Self {
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

impl From<Address> for profile::Address {
    fn from(a: Address) -> Self {
        Self {
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// A payment provider token with a label for people; never a card number.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "PaymentMethodInput")]
pub struct PaymentMethod {
    pub token: String,
    pub label: Option<String>,
}

/// A signed-in session.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token_expires_at: DateTime<Utc>,
    #[graphql(skip)]
    account: Account,
}

#[ComplexObject]
impl Session {
    async fn user(&self) -> User {
        User::owned(self.account.clone())
    }
}

impl From<sessions::Session> for Session {
    fn from(s: sessions::Session) -> Self {
        Self {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            access_token_expires_at: s.access_expires_at,
            refresh_token_expires_at: s.refresh_expires_at,
            account: s.account,
        }
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub device_id: String,
    pub password: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Profile changes: an omitted field is kept, an explicit null clears it.
#[derive(InputObject, Default)]
pub struct ProfileInput {
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub shipping_address: MaybeUndefined<Address>,
    pub billing_address: MaybeUndefined<Address>,
    pub default_payment_method: MaybeUndefined<PaymentMethod>,
}

/// Extra fields of the `users` connection.
#[derive(SimpleObject)]
pub struct UserConnectionFields {
    /// Accounts matching the filter, on every page.
    pub total_count: i64,
}

pub type UserConnection = Connection<String, User, UserConnectionFields, EmptyFields>;

pub struct Query;

#[Object]
impl Query {
    /// The signed-in user; null for anonymous callers.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        match ctx.auth() {
            Auth::Anonymous => Ok(None),
            auth => load_user(ctx, auth.user_id()?).await,
        }
    }

    /// One account; the user themself or ADMIN.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        let id = parse_id("id", &id)?;
        ctx.auth().require_self_or_admin(id)?;
        load_user(ctx, id).await
    }

    /// ADMIN: accounts in registration order.
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        role: Option<Role>,
        active: Option<bool>,
    ) -> ApiResult<UserConnection> {
        live_caller(ctx, &[Role::Admin]).await?;
        let first = page_size(first, 20)?;
        let after = id_cursor(after.as_deref())?;
        let filter = AccountFilter {
            search,
            role,
            active,
        };
        let page = accounts::list(&state(ctx).pool, &filter, first, after)
            .await
            .map_err(ApiError::from)?;
        let mut connection = UserConnection::with_additional_fields(
            after.is_some(),
            page.has_next_page,
            UserConnectionFields {
                total_count: page.total_count,
            },
        );
        connection.edges.extend(
            page.items.into_iter().map(|account| {
                Edge::new(encode_cursor(&account.id.to_string()), User::new(account))
            }),
        );
        Ok(connection)
    }

    /// Federation entity resolver: `User` by `id`, batched per request.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<User>> {
        match Uuid::parse_str(&id) {
            Ok(id) => load_user(ctx, id).await,
            Err(_) => Ok(None),
        }
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates a CUSTOMER account. A taken device id or e-mail → `CONFLICT`.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> ApiResult<User> {
        let account = accounts::register(
            &state(ctx).pool,
            NewAccount {
                device_id: input.device_id,
                password: input.password,
                email: input.email,
                phone: input.phone,
                role: Role::Customer,
            },
        )
        .await?;
        Ok(User::owned(account))
    }

    /// Opens a session. Wrong password and unknown device id fail alike.
    async fn login(
        &self,
        ctx: &Context<'_>,
        device_id: String,
        password: String,
    ) -> ApiResult<Session> {
        let st = state(ctx);
        let limits = &st.throttle;
        let address = ctx
            .data_opt::<ClientAddress>()
            .and_then(|client| limits.address_of(client));
        let session =
            sessions::login(&st.pool, &st.issuer, limits, address, &device_id, password).await;
        if let Err(UsersError::Throttled { retry_after }) = &session {
            // For HTTP clients calling this port directly; through the
            // gateway `extensions.retryAfter` says the same.
            ctx.insert_http_header(axum::http::header::RETRY_AFTER, retry_after.to_string());
        }
        Ok(session?.into())
    }

    /// Exchanges a refresh token for a new pair (the old one stops working).
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> ApiResult<Session> {
        let st = state(ctx);
        Ok(sessions::refresh(&st.pool, &st.issuer, &refresh_token)
            .await?
            .into())
    }

    /// Ends the session the refresh token belongs to.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> ApiResult<bool> {
        let st = state(ctx);
        sessions::logout(&st.pool, &st.issuer, &refresh_token).await?;
        Ok(true)
    }

    /// Changes the caller's own profile.
    async fn update_profile(&self, ctx: &Context<'_>, input: ProfileInput) -> ApiResult<User> {
        let user_id = live_caller(ctx, ANY_ROLE).await?.id;
        let update = ProfileUpdate {
            email: input.email.into(),
            phone: input.phone.into(),
            shipping_address: input
                .shipping_address
                .map_value(profile::Address::from)
                .into(),
            billing_address: input
                .billing_address
                .map_value(profile::Address::from)
                .into(),
            payment_method: input
                .default_payment_method
                .map_value(|m| profile::PaymentMethod {
                    token: m.token,
                    label: m.label,
                })
                .into(),
        };
        Ok(User::new(
            accounts::update_profile(&state(ctx).pool, user_id, update).await?,
        ))
    }

    /// Ends every session of the caller: refresh tokens are revoked and
    /// access tokens, this one included, stop working everywhere within a second.
    async fn logout_all(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let user_id = live_caller(ctx, ANY_ROLE).await?.id;
        let st = state(ctx);
        access::logout_all(&st.pool, user_id, st.issuer.access_ttl()).await?;
        st.relay.wake();
        Ok(true)
    }

    /// Replaces the caller's password. Every session ends (tokens stop
    /// working everywhere within a second); the answer is a new one.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> ApiResult<Session> {
        let user_id = live_caller(ctx, ANY_ROLE).await?.id;
        let st = state(ctx);
        let session = access::change_password(
            &st.pool,
            &st.issuer,
            user_id,
            current_password,
            new_password,
        )
        .await?;
        st.relay.wake();
        Ok(session.into())
    }

    /// ADMIN: gives a user a role. Their tokens signed before stop working
    /// everywhere within a second; a refresh or login gets the new role.
    async fn set_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> ApiResult<User> {
        let actor = live_caller(ctx, &[Role::Admin]).await?.id;
        let user_id = parse_id("userId", &user_id)?;
        let st = state(ctx);
        let account =
            accounts::set_role(&st.pool, st.issuer.access_ttl(), actor, user_id, role).await?;
        st.relay.wake();
        Ok(User::new(account))
    }

    /// ADMIN: blocks log-in and refresh, revokes the user's refresh tokens,
    /// and their access tokens stop working everywhere within a second.
    async fn deactivate_user(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<User> {
        let actor = live_caller(ctx, &[Role::Admin]).await?.id;
        let user_id = parse_id("userId", &user_id)?;
        let st = state(ctx);
        let account =
            accounts::set_active(&st.pool, st.issuer.access_ttl(), actor, user_id, false).await?;
        st.relay.wake();
        Ok(User::new(account))
    }

    /// ADMIN: lets a deactivated user log in again.
    async fn reactivate_user(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<User> {
        let actor = live_caller(ctx, &[Role::Admin]).await?.id;
        let user_id = parse_id("userId", &user_id)?;
        let st = state(ctx);
        let account =
            accounts::set_active(&st.pool, st.issuer.access_ttl(), actor, user_id, true).await?;
        st.relay.wake();
        Ok(User::new(account))
    }
}

/// The users subgraph schema.
pub type UsersSchema = async_graphql::Schema<Query, Mutation, EmptySubscription>;
