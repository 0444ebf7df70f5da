//! Access cut-offs: which access tokens lost their powers before they expired.
//!
//! Every change to what an account may do (role, deactivation, reactivation,
//! logout everywhere, a new password) moves the account to a new *access
//! epoch*, a counter kept on the account row. Tokens carry the epoch they
//! were issued in (`access_epoch`); a token from an older epoch than the
//! newest one known here is refused, whatever it says about its role.
//!
//! A counter rather than an instant: the signer reads it under the same row
//! lock the change takes, so a token is of the old epoch exactly when it was
//! signed before the change committed. No clock, no `iat` second granularity
//! and no clock skew between users replicas enters the decision; a fresh
//! login in the very millisecond after a role change works, and a token signed
//! a microsecond before it does not.
//!
//! An entry matters only while tokens of older epochs can still be valid: the
//! signer sends `until` (the change plus the access-token lifetime and a
//! margin), after which the entry is dropped. That keeps the table as small as
//! the number of accounts changed in the last quarter of an hour.
//!
//! This module holds only the table and its wire format; how it is filled
//! (the users subgraph's list, then its `user.access_changed` events) is
//! kit's `auth::revocation_feed`, which follows kit's event bus.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{Claims, RoleName, TokenError};

/// The topic of the event the users subgraph publishes on every access change.
pub const ACCESS_CHANGED: &str = "user.access_changed";

/// One account's access change, as published and as listed by the users subgraph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChange {
    /// The account.
    pub user: Uuid,
    /// Its new access epoch: tokens of older epochs are refused.
    pub epoch: i64,
    /// When the change committed (the cut-off instant).
    pub at: DateTime<Utc>,
    /// From then on no token of an older epoch can be valid any more.
    pub until: DateTime<Utc>,
    /// The account's role after the change.
    pub role: RoleName,
    /// Whether the account may sign in after the change.
    pub active: bool,
}

/// The per-user cut-offs of one process, shared by every verifier built from
/// the same settings (cheap to clone).
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    entries: RwLock<HashMap<Uuid, Entry>>,
    /// True once a full list has been loaded; until then nothing can be checked.
    primed: watch::Sender<bool>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    epoch: i64,
    until: DateTime<Utc>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("entries", &self.len())
            .field("primed", &self.is_primed())
            .finish()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    /// An empty table that refuses every access token until it is primed:
    /// after a restart, a token revoked while the process was down must not
    /// slip through before the list is loaded.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: RwLock::default(),
                primed: watch::channel(false).0,
            }),
        }
    }

    /// Refuses `claims` when the account's access changed after the token
    /// was issued, or when the cut-offs are not loaded yet.
    pub fn check(&self, claims: &Claims) -> Result<(), TokenError> {
        if !self.is_primed() {
            return Err(TokenError::CutoffsUnknown);
        }
        let entries = self.inner.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(&claims.sub) {
            Some(entry) if claims.access_epoch < entry.epoch => Err(TokenError::Revoked),
            _ => Ok(()),
        }
    }

    /// Records one change; an older or repeated one changes nothing (events
    /// arrive at least once and the list and the events overlap).
    pub fn apply(&self, change: &AccessChange) {
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(change.user).or_insert(Entry {
            epoch: change.epoch,
            until: change.until,
        });
        if change.epoch >= entry.epoch {
            entry.epoch = change.epoch;
            entry.until = entry.until.max(change.until);
        }
    }

    /// Merges a full list of recent changes and starts checking tokens.
    pub fn load(&self, changes: &[AccessChange]) {
        for change in changes {
            self.apply(change);
        }
        self.prune(Utc::now());
        self.inner.primed.send_replace(true);
    }

    /// Drops entries no token of an older epoch can outlive any more.
    pub fn prune(&self, now: DateTime<Utc>) {
        self.inner
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, entry| entry.until > now);
    }

    /// True once a full list was loaded.
    pub fn is_primed(&self) -> bool {
        *self.inner.primed.borrow()
    }

    /// Resolves once a full list was loaded.
    pub async fn primed(&self) {
        let mut rx = self.inner.primed.subscribe();
        // The sender lives in `self`, so the wait cannot fail.
        let _ = rx.wait_for(|primed| *primed).await;
    }

    /// Accounts with a live cut-off.
    pub fn len(&self) -> usize {
        self.inner
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// True when no account has a live cut-off.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{TokenSettings, TokenType};

    fn token(user: Uuid, epoch: i64, iat: i64) -> Claims {
        let settings = TokenSettings::default();
        Claims {
            iss: settings.issuer,
            aud: settings.audience,
            sub: user,
            role: RoleName::from_static("ADMIN"),
            exp: iat + 900,
            iat,
            token_type: TokenType::Access,
            jti: Uuid::new_v4(),
            fam: None,
            access_epoch: epoch,
        }
    }

    fn change(user: Uuid, epoch: i64, until_in: Duration) -> AccessChange {
        let now = Utc::now();
        AccessChange {
            user,
            epoch,
            at: now,
            until: now + until_in,
            role: RoleName::from_static("CUSTOMER"),
            active: false,
        }
    }

    #[test]
    fn refuses_everything_until_primed() {
        let table = Revocations::new();
        let user = Uuid::new_v4();
        assert_eq!(
            table.check(&token(user, 0, 0)),
            Err(TokenError::CutoffsUnknown)
        );
        table.load(&[]);
        assert_eq!(table.check(&token(user, 0, 0)), Ok(()));
    }

    #[test]
    fn a_token_signed_in_the_same_second_is_judged_by_its_epoch() {
        let table = Revocations::new();
        table.load(&[]);
        let user = Uuid::new_v4();
        let second = Utc::now().timestamp();
        let before = token(user, 0, second);
        let after = token(user, 1, second);
        table.apply(&change(user, 1, Duration::minutes(16)));
        assert_eq!(table.check(&before), Err(TokenError::Revoked));
        assert_eq!(table.check(&after), Ok(()));
        // Other accounts are untouched.
        assert_eq!(table.check(&token(Uuid::new_v4(), 0, second)), Ok(()));
    }

    #[test]
    fn repeated_and_late_changes_never_lower_the_cut_off() {
        let table = Revocations::new();
        let user = Uuid::new_v4();
        table.load(&[change(user, 3, Duration::minutes(16))]);
        table.apply(&change(user, 2, Duration::minutes(16)));
        table.apply(&change(user, 3, Duration::minutes(16)));
        assert_eq!(table.check(&token(user, 2, 0)), Err(TokenError::Revoked));
        assert_eq!(table.check(&token(user, 3, 0)), Ok(()));
    }

    #[test]
    fn entries_older_than_any_live_token_are_pruned() {
        let table = Revocations::new();
        let (old, recent) = (Uuid::new_v4(), Uuid::new_v4());
        table.load(&[
            change(old, 1, Duration::seconds(-1)),
            change(recent, 1, Duration::minutes(16)),
        ]);
        assert_eq!(table.len(), 1);
        assert_eq!(table.check(&token(recent, 0, 0)), Err(TokenError::Revoked));
        table.prune(Utc::now() + Duration::minutes(17));
        assert!(table.is_empty());
    }
}
