//! Sessions: login, refresh-token rotation with reuse detection, logout.
//!
//! Each login starts a token *family*. A refresh token works once: using it
//! marks it used and issues the next token of the family. Presenting a used
//! token again means it was stolen (or replayed), so the whole family is
//! revoked, locking out both the thief and the victim until they log in anew.
//! The row is locked while it is checked, so two concurrent refreshes of one
//! token cannot both succeed.

use std::{net::IpAddr, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{
    auth::{Claims, KeyRing, TokenSettings, TokenType, Verifier},
    db::PgPool,
};
use uuid::Uuid;

use crate::{
    accounts::normalize_device_id,
    db::{
        Account,
        schema::{refresh_tokens, users},
    },
    error::UsersError,
    password,
    throttle::{self, Attempt, ThrottleConfig},
};

/// Signs the tokens of new sessions and checks presented refresh tokens.
pub struct TokenIssuer {
    ring: KeyRing,
    settings: TokenSettings,
    verifier: Arc<Verifier>,
}

impl TokenIssuer {
    /// An issuer signing with `ring`'s signing key.
    pub fn new(ring: KeyRing, settings: TokenSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            ring.signing_key().is_some(),
            "the users subgraph needs a private signing key"
        );
        let verifier = Arc::new(Verifier::new(&ring, &settings)?);
        Ok(Self {
            ring,
            settings,
            verifier,
        })
    }

    /// How long access tokens live (how long an access change's cut-off matters).
    pub fn access_ttl(&self) -> std::time::Duration {
        self.settings.access_ttl
    }

    /// The verifier matching this issuer (also used by the HTTP server).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone()
    }

    fn claims(
        &self,
        account: &Account,
        token_type: TokenType,
        family: Option<Uuid>,
        jti: Uuid,
        now: DateTime<Utc>,
    ) -> Claims {
        let ttl = match token_type {
            TokenType::Access => self.settings.access_ttl,
            TokenType::Refresh => self.settings.refresh_ttl,
        };
        Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: account.id,
            role: account.role().into(),
            iat: now.timestamp(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            token_type,
            jti,
            fam: family,
            // Read under the row lock every access change takes: a token is
            // of an older epoch exactly when it was signed before the change.
            access_epoch: account.access_epoch,
        }
    }
}

/// A signed-in session: the token pair and the account it belongs to.
#[derive(Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
    pub account: Account,
}

/// Records a new refresh token of `family` and signs the pair.
pub(crate) async fn issue(
    conn: &mut AsyncPgConnection,
    issuer: &TokenIssuer,
    account: Account,
    family: Uuid,
) -> Result<Session, UsersError> {
    let now = Utc::now();
    let access = issuer.claims(&account, TokenType::Access, None, Uuid::new_v4(), now);
    let refresh = issuer.claims(
        &account,
        TokenType::Refresh,
        Some(family),
        Uuid::new_v4(),
        now,
    );
    let refresh_expires_at = DateTime::from_timestamp(refresh.exp, 0).unwrap_or(now);
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::jti.eq(refresh.jti),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::user_id.eq(account.id),
            refresh_tokens::issued_at.eq(now),
            refresh_tokens::expires_at.eq(refresh_expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(Session {
        access_token: issuer.ring.sign(&access)?,
        refresh_token: issuer.ring.sign(&refresh)?,
        access_expires_at: now + Duration::seconds(access.exp - access.iat),
        refresh_expires_at,
        account,
    })
}

/// Checks the password and opens a session. Unknown device ids and wrong
/// passwords give the same error after the same amount of work (an argon2
/// verification, against a dummy hash when there is no account), and both
/// count against the throttle ([`throttle`]) of the device id and of the
/// client's `address`, which may refuse the attempt before any of that.
pub async fn login(
    pool: &PgPool,
    issuer: &TokenIssuer,
    limits: &ThrottleConfig,
    address: Option<IpAddr>,
    device_id: &str,
    password: String,
) -> Result<Session, UsersError> {
    let device_id = normalize_device_id(device_id).map_err(|_| UsersError::InvalidCredentials)?;
    let attempt = Attempt::new(&device_id, address);
    throttle::admit(pool, limits, &attempt).await?;
    let session = check_and_open(pool, issuer, &device_id, password).await;
    if session.is_ok() {
        // The session exists now; a counter left behind only costs its holder a delay later.
        if let Err(err) = throttle::succeeded(pool, &attempt).await {
            tracing::warn!(error = %err, "could not clear login counters");
        }
    } else if Uuid::new_v4().as_bytes()[0] == 0 {
        // Now and then (1 in 256 failures), counters of a past window go.
        if let Err(err) = throttle::prune(pool, limits).await {
            tracing::warn!(error = %err, "could not prune login counters");
        }
    }
    session
}

async fn check_and_open(
    pool: &PgPool,
    issuer: &TokenIssuer,
    device_id: &str,
    password: String,
) -> Result<Session, UsersError> {
    let found: Option<(Uuid, String)> = {
        let mut conn = pool.get().await?;
        users::table
            .filter(users::device_id.eq(device_id))
            .select((users::id, users::password_hash))
            .first(&mut conn)
            .await
            .optional()?
    };
    // No connection is held while the hash is checked: it takes tens of ms.
    let (id, hash) = found.unzip();
    if !password::verify(password, hash).await? {
        return Err(UsersError::InvalidCredentials);
    }
    let id = id.ok_or(UsersError::InvalidCredentials)?;
    let mut conn = pool.get().await?;
    // A deactivated account is told so only after its password checked out.
    conn.transaction(async |conn| {
        let account = lock_account(conn, id).await?;
        if !account.active {
            return Err(UsersError::Deactivated);
        }
        issue(conn, issuer, account, Uuid::new_v4()).await
    })
    .await
}

/// The state of a presented refresh token, read under a row lock.
#[derive(Queryable)]
struct RefreshRow {
    family_id: Uuid,
    user_id: Uuid,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

enum Rotation {
    Rotated(Box<Session>),
    Reused,
    Refused(UsersError),
}

/// Exchanges a refresh token for a new pair; a second use revokes the family.
pub async fn refresh(
    pool: &PgPool,
    issuer: &TokenIssuer,
    token: &str,
) -> Result<Session, UsersError> {
    let claims = issuer
        .verifier
        .verify(token, TokenType::Refresh)
        .map_err(UsersError::InvalidToken)?;
    let mut conn = pool.get().await?;
    // Revocations must be committed even though the caller gets an error, so
    // the transaction returns an outcome and the error is raised after it.
    let outcome = conn
        .transaction(async |conn| {
            // The user row first (shared), then the token: the order deactivation
            // takes them in, so neither can slip a live token past the other.
            let account = lock_account(conn, claims.sub).await?;
            let row: Option<RefreshRow> = refresh_tokens::table
                .find(claims.jti)
                .select((
                    refresh_tokens::family_id,
                    refresh_tokens::user_id,
                    refresh_tokens::used_at,
                    refresh_tokens::revoked_at,
                ))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some(RefreshRow {
                family_id: family,
                user_id,
                used_at,
                revoked_at,
            }) = row.filter(|r| r.user_id == account.id)
            else {
                return Ok(Rotation::Refused(UsersError::RefreshRevoked));
            };
            if revoked_at.is_some() {
                return Ok(Rotation::Refused(UsersError::RefreshRevoked));
            }
            if used_at.is_some() {
                revoke_family(conn, family).await?;
                return Ok(Rotation::Reused);
            }
            debug_assert_eq!(user_id, account.id);
            if !account.active {
                revoke_family(conn, family).await?;
                return Ok(Rotation::Refused(UsersError::Deactivated));
            }
            diesel::update(refresh_tokens::table.find(claims.jti))
                .set(refresh_tokens::used_at.eq(Utc::now()))
                .execute(conn)
                .await?;
            let session = issue(conn, issuer, account, family).await?;
            Ok::<_, UsersError>(Rotation::Rotated(Box::new(session)))
        })
        .await?;
    match outcome {
        Rotation::Rotated(session) => Ok(*session),
        Rotation::Reused => {
            tracing::warn!(family = %claims.fam.unwrap_or_default(), user = %claims.sub, "refresh token reuse; family revoked");
            Err(UsersError::RefreshReuse)
        }
        Rotation::Refused(err) => Err(err),
    }
}

/// Ends the session the refresh token belongs to (its whole family).
pub async fn logout(pool: &PgPool, issuer: &TokenIssuer, token: &str) -> Result<(), UsersError> {
    let claims = issuer
        .verifier
        .verify(token, TokenType::Refresh)
        .map_err(UsersError::InvalidToken)?;
    let family = claims.fam.ok_or(UsersError::RefreshRevoked)?;
    let mut conn = pool.get().await?;
    revoke_family(&mut conn, family).await?;
    Ok(())
}

/// Reads an account under a shared row lock, so it cannot be deactivated
/// until the caller's transaction ends.
pub(crate) async fn lock_account(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Account, UsersError> {
    users::table
        .find(id)
        .select(Account::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()?
        .ok_or(UsersError::RefreshRevoked)
}

async fn revoke_family(conn: &mut AsyncPgConnection, family: Uuid) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// Revokes every live refresh token of a user (deactivation).
pub(crate) async fn revoke_all_for_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}
