//! Password policy and argon2id hashing (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//!
//! Hashing takes tens of milliseconds of CPU on purpose, so it runs on the
//! blocking pool, never on the async workers.

use std::sync::LazyLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::error::UsersError;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 128;

/// Verified against when the account does not exist, so an unknown device id
/// costs the same time as a wrong password and reveals nothing.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_blocking("grocery-dummy-password").expect("hashing a constant cannot fail")
});

/// Hashes in flight at once: each takes 19 MiB and a core, so a burst of
/// logins queues here instead of starving the machine.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// Computes the dummy hash now, so the first login for an unknown account
/// costs what every other login costs.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// 8 to 128 characters (not bytes); anything else is refused.
pub fn check_policy(password: &str) -> Result<(), UsersError> {
    let chars = password.chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
        return Err(UsersError::invalid(
            "password",
            format!("password must be {MIN_CHARS} to {MAX_CHARS} characters long"),
        ));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> Result<String, UsersError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Internal(anyhow::anyhow!("argon2: {e}")))
}

/// The PHC string of an argon2id hash of `password`.
pub async fn hash(password: String) -> Result<String, UsersError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| UsersError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| UsersError::Internal(e.into()))?
}

/// Whether `password` matches `stored`; with no stored hash, burns the same time and says no.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, UsersError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| UsersError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| UsersError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|e| UsersError::Internal(e.into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_counts_characters_not_bytes() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("ééééééé").is_err()); // 7 chars, 14 bytes
        assert!(check_policy("éééééééé").is_ok());
        assert!(check_policy(&"x".repeat(128)).is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse".into()).await.unwrap();
        let b = hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert!(
            verify("correct horse".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(a)).await.unwrap());
        assert!(!verify("grocery-dummy-password".into(), None).await.unwrap());
    }
}
