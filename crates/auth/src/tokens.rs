//! JWT claims, signing and verification (RS256 only, `kid` required).
//!
//! Access and refresh tokens share one claim set and differ by `token_type`;
//! a verifier is always told which type it expects, so a refresh token is
//! refused wherever an access token is expected and vice versa.

use std::{collections::BTreeMap, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use settings::Env;

use crate::{KeyRing, Revocations, RoleName};

/// Which of the two tokens a JWT is.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenType {
    /// Short-lived bearer for API calls.
    Access,
    /// Long-lived, single-use, exchanged for a new pair.
    Refresh,
}

/// The claims grocery puts in every token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// What the user may do, as the signer named it.
    pub role: RoleName,
    pub exp: i64,
    pub iat: i64,
    pub token_type: TokenType,
    /// Unique token id; for refresh tokens, the row that tracks its use.
    pub jti: Uuid,
    /// Refresh-token family: every token rotated from one login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<Uuid>,
    /// The account's access epoch when the token was signed; a token of an
    /// older epoch than the account's newest is refused (see [`Revocations`]).
    /// Tokens signed before epochs existed read as 0.
    #[serde(default)]
    pub access_epoch: i64,
}

/// Issuer, audience and lifetimes, shared by signer and verifiers, and the
/// process's access cut-offs that every verifier built from them checks.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Per-user cut-offs access tokens are checked against; `None` checks
    /// none (unit tests of one subgraph). The launcher attaches the table and
    /// keeps it filled.
    pub revocations: Option<Revocations>,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "grocery-users".into(),
            audience: "grocery".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            revocations: None,
        }
    }
}

impl TokenSettings {
    /// Reads `JWT_ISSUER`, `JWT_AUDIENCE`, `ACCESS_TOKEN_TTL_SECS`,
    /// `REFRESH_TOKEN_TTL_SECS`. Tokens are checked against a table of access
    /// cut-offs of their own, which the process keeps filled
    /// ([`super::revocation_feed`]).
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        Self {
            issuer: env.get("JWT_ISSUER").unwrap_or(defaults.issuer),
            audience: env.get("JWT_AUDIENCE").unwrap_or(defaults.audience),
            access_ttl: Duration::from_secs(
                env.parse_or("ACCESS_TOKEN_TTL_SECS", defaults.access_ttl.as_secs()),
            ),
            refresh_ttl: Duration::from_secs(
                env.parse_or("REFRESH_TOKEN_TTL_SECS", defaults.refresh_ttl.as_secs()),
            ),
            revocations: Some(super::Revocations::new()),
        }
    }
}

/// Why a token was refused. The message is safe to show to the client.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token must be RS256-signed")]
    WrongAlgorithm,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token signature or claims are invalid")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("expected {expected} token")]
    WrongType { expected: &'static str },
    #[error("this account's access changed after the token was issued; sign in again")]
    Revoked,
    #[error("token revocations are not loaded yet; try again shortly")]
    CutoffsUnknown,
}

impl KeyRing {
    /// Signs `claims` with the ring's signing key (RS256, with `kid`).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let key = self
            .signing_key()
            .ok_or_else(|| anyhow::anyhow!("this key ring has no signing key"))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }
}

/// Checks tokens against a fixed set of public keys and, for access tokens,
/// against the process's access cut-offs.
pub struct Verifier {
    keys: BTreeMap<String, DecodingKey>,
    validation: Validation,
    revocations: Option<Revocations>,
    verified: Verified,
}

/// Most tokens a verifier remembers as verified.
const VERIFIED_CAPACITY: usize = 8192;

/// The claims of tokens whose signature and claims this verifier has
/// checked, by the SHA-256 of the token's exact text, until they expire.
/// The RSA check is most of a request's token cost, and a client sends the
/// same token with every request until it refreshes it. Only tokens that
/// passed are kept, so garbage cannot crowd them out; the type and the
/// access cut-offs are still checked on every use, and a new key set makes
/// a new verifier, which starts empty.
#[derive(Default)]
struct Verified(std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>);

impl Verified {
    fn digest(token: &str) -> [u8; 32] {
        use rsa::sha2::{Digest, Sha256};
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of an unexpired verified token (at `now`, Unix seconds).
    fn get(&self, digest: &[u8; 32], now: i64) -> Option<Claims> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(digest).filter(|c| c.exp > now).cloned()
    }

    fn insert(&self, digest: [u8; 32], claims: &Claims) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= VERIFIED_CAPACITY {
            // Bounded: start over rather than track recency on every hit.
            map.clear();
        }
        map.insert(digest, claims.clone());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Verifier {
    /// Accepts tokens signed by any key of `ring`, for `settings`' issuer and audience.
    pub fn new(ring: &KeyRing, settings: &TokenSettings) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            keys: ring.decoding_keys()?,
            validation,
            revocations: settings.revocations.clone(),
            verified: Verified::default(),
        })
    }

    /// Accepts tokens signed by the RSA keys of a JWKS document (what the
    /// users subgraph serves at `/.well-known/jwks.json`).
    pub fn from_jwks(jwks: &serde_json::Value, settings: &TokenSettings) -> anyhow::Result<Self> {
        let mut keys = BTreeMap::new();
        for key in jwks["keys"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("a JWKS needs a keys array"))?
        {
            let (Some(kid), Some("RSA"), Some(n), Some(e)) = (
                key["kid"].as_str(),
                key["kty"].as_str(),
                key["n"].as_str(),
                key["e"].as_str(),
            ) else {
                continue; // keys of other types or without kid cannot sign our tokens
            };
            keys.insert(kid.to_owned(), DecodingKey::from_rsa_components(n, e)?);
        }
        anyhow::ensure!(!keys.is_empty(), "the JWKS holds no usable RSA key");
        let empty = Self::new(&KeyRing::default(), settings)?;
        Ok(Self {
            keys,
            validation: empty.validation,
            revocations: empty.revocations,
            verified: Verified::default(),
        })
    }

    /// Verifies signature, `kid`, `exp`, `iss`, `aud`, that the token is of
    /// type `expected` and, for access tokens, that the account's access did
    /// not change since it was signed.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let digest = Verified::digest(token);
        let claims = match self.verified.get(&digest, chrono::Utc::now().timestamp()) {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signed(token)?;
                self.verified.insert(digest, &claims);
                claims
            }
        };
        if claims.token_type != expected {
            return Err(TokenError::WrongType {
                expected: match expected {
                    TokenType::Access => "an access",
                    TokenType::Refresh => "a refresh",
                },
            });
        }
        // Refresh tokens are checked against their stored row by the signer.
        if let (TokenType::Access, Some(revocations)) = (expected, &self.revocations) {
            revocations.check(&claims)?;
        }
        Ok(claims)
    }

    /// The claims of `token` if its signature, `kid`, `exp`, `iss` and `aud` hold.
    fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::WrongAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::EncodingKey;

    use super::*;
    use crate::SigningKey;

    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate().unwrap().0);
    static OTHER: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate().unwrap().0);

    fn claims(token_type: TokenType, exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        let settings = TokenSettings::default();
        Claims {
            iss: settings.issuer,
            aud: settings.audience,
            sub: Uuid::new_v4(),
            role: RoleName::from_static("CUSTOMER"),
            exp: now + exp_in,
            iat: now,
            token_type,
            jti: Uuid::new_v4(),
            fam: None,
            access_epoch: 0,
        }
    }

    static OTHER_RING: LazyLock<KeyRing> =
        LazyLock::new(|| KeyRing::with_signing_key(OTHER.clone()));

    fn ring() -> KeyRing {
        KeyRing::with_signing_key(KEY.clone())
    }

    fn verifier() -> Verifier {
        Verifier::new(&ring(), &TokenSettings::default()).unwrap()
    }

    fn b64(json: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
    }

    #[test]
    fn accepts_a_valid_access_token() {
        let c = claims(TokenType::Access, 60);
        let token = ring().sign(&c).unwrap();
        assert_eq!(verifier().verify(&token, TokenType::Access).unwrap(), c);
    }

    #[test]
    fn a_verified_token_is_remembered_but_its_type_and_forgeries_are_still_refused() {
        let v = verifier();
        let c = claims(TokenType::Access, 60);
        let token = ring().sign(&c).unwrap();
        assert_eq!(v.verify(&token, TokenType::Access).unwrap(), c);
        assert_eq!(v.verified.len(), 1);
        // The remembered claims answer again, and the type is checked on every use.
        assert_eq!(v.verify(&token, TokenType::Access).unwrap(), c);
        assert!(matches!(
            v.verify(&token, TokenType::Refresh),
            Err(TokenError::WrongType { .. })
        ));
        // The same claims under another signature are another token: checked in full.
        let parts: Vec<&str> = token.split('.').collect();
        let other = OTHER_RING.sign(&c).unwrap();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            other.split('.').nth(2).unwrap()
        );
        assert_eq!(
            v.verify(&forged, TokenType::Access),
            Err(TokenError::Invalid)
        );
        // Refused tokens are not remembered.
        assert_eq!(v.verified.len(), 1);
    }

    #[test]
    fn a_remembered_token_is_refused_once_its_account_is_cut_off() {
        let revocations = Revocations::new();
        revocations.load(&[]);
        let settings = TokenSettings {
            revocations: Some(revocations.clone()),
            ..TokenSettings::default()
        };
        let v = Verifier::new(&ring(), &settings).unwrap();
        let c = claims(TokenType::Access, 60);
        let token = ring().sign(&c).unwrap();
        assert_eq!(v.verify(&token, TokenType::Access).unwrap(), c);
        let now = chrono::Utc::now();
        revocations.apply(&crate::AccessChange {
            user: c.sub,
            epoch: c.access_epoch + 1,
            at: now,
            until: now + chrono::Duration::minutes(16),
            role: RoleName::from_static("CUSTOMER"),
            active: false,
        });
        assert_eq!(
            v.verify(&token, TokenType::Access),
            Err(TokenError::Revoked)
        );
    }

    #[test]
    fn remembered_tokens_expire_and_the_memory_is_bounded() {
        let verified = Verified::default();
        let c = claims(TokenType::Access, 60);
        let digest = Verified::digest("a token");
        verified.insert(digest, &c);
        assert_eq!(verified.get(&digest, c.exp - 1), Some(c.clone()));
        assert_eq!(verified.get(&digest, c.exp), None, "gone at exp");
        for i in 0..VERIFIED_CAPACITY + 10 {
            verified.insert(Verified::digest(&i.to_string()), &c);
        }
        assert!(verified.len() <= VERIFIED_CAPACITY);
    }

    #[test]
    fn refuses_expired_tokens() {
        let token = ring().sign(&claims(TokenType::Access, -120)).unwrap();
        assert_eq!(
            verifier().verify(&token, TokenType::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn refuses_the_wrong_token_type_both_ways() {
        let refresh = ring().sign(&claims(TokenType::Refresh, 60)).unwrap();
        let access = ring().sign(&claims(TokenType::Access, 60)).unwrap();
        assert!(matches!(
            verifier().verify(&refresh, TokenType::Access),
            Err(TokenError::WrongType { .. })
        ));
        assert!(matches!(
            verifier().verify(&access, TokenType::Refresh),
            Err(TokenError::WrongType { .. })
        ));
    }

    #[test]
    fn refuses_tampered_payloads() {
        let token = ring().sign(&claims(TokenType::Access, 60)).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(TokenType::Access, 60);
        forged.role = RoleName::from_static("ADMIN");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_value(&forged).unwrap()),
            parts[2]
        );
        assert_eq!(
            verifier().verify(&tampered, TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn refuses_alg_none() {
        let header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": KEY.kid });
        let body = serde_json::to_value(claims(TokenType::Access, 60)).unwrap();
        let token = format!("{}.{}.", b64(&header), b64(&body));
        assert_eq!(
            verifier().verify(&token, TokenType::Access),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn refuses_hs256_signed_with_the_public_key() {
        // The classic key-confusion attack: HMAC keyed with the (public) RSA key.
        let public_pem = KEY.public_pem().unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KEY.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims(TokenType::Access, 60),
            &EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            verifier().verify(&token, TokenType::Access),
            Err(TokenError::WrongAlgorithm)
        );
    }

    #[test]
    fn refuses_unknown_or_missing_kid() {
        let stranger = KeyRing::with_signing_key(OTHER.clone());
        let token = stranger.sign(&claims(TokenType::Access, 60)).unwrap();
        assert_eq!(
            verifier().verify(&token, TokenType::Access),
            Err(TokenError::UnknownKey)
        );
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims(TokenType::Access, 60),
            &KEY.encoding,
        )
        .unwrap();
        assert_eq!(
            verifier().verify(&no_kid, TokenType::Access),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn refuses_a_known_kid_with_another_keys_signature() {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims(TokenType::Access, 60), &OTHER.encoding).unwrap();
        assert_eq!(
            verifier().verify(&token, TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn refuses_foreign_issuer_or_audience() {
        let mut c = claims(TokenType::Access, 60);
        c.iss = "someone-else".into();
        assert_eq!(
            verifier().verify(&ring().sign(&c).unwrap(), TokenType::Access),
            Err(TokenError::Invalid)
        );
        let mut c = claims(TokenType::Access, 60);
        c.aud = "another-api".into();
        assert_eq!(
            verifier().verify(&ring().sign(&c).unwrap(), TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_verifier_built_from_the_published_jwks_accepts_our_tokens() {
        let token = ring().sign(&claims(TokenType::Access, 60)).unwrap();
        let from_jwks = Verifier::from_jwks(&ring().jwks(), &TokenSettings::default()).unwrap();
        assert!(from_jwks.verify(&token, TokenType::Access).is_ok());
        assert!(
            Verifier::from_jwks(
                &serde_json::json!({ "keys": [] }),
                &TokenSettings::default()
            )
            .is_err()
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_publishes_both_keys() {
        let old_token = ring().sign(&claims(TokenType::Access, 60)).unwrap();
        let mut rotated = KeyRing::with_signing_key(OTHER.clone());
        rotated.add_public_pem(&KEY.public_pem().unwrap()).unwrap();
        let verifier = Verifier::new(&rotated, &TokenSettings::default()).unwrap();
        assert!(verifier.verify(&old_token, TokenType::Access).is_ok());
        let new_token = rotated.sign(&claims(TokenType::Access, 60)).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some(OTHER.kid.as_str())
        );
        assert!(verifier.verify(&new_token, TokenType::Access).is_ok());
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
    }
}
