//! RSA key material: the signing key, the keys accepted for verification, and
//! the JWKS document that publishes them.
//!
//! A ring has at most one signing key and any number of verification keys, so
//! keys can rotate: start signing with a new key while the old public key is
//! still accepted and published until every token it signed has expired.

use std::{collections::BTreeMap, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::{
    RsaPrivateKey, RsaPublicKey,
    pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey},
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding},
    sha2::{Digest, Sha256},
    traits::PublicKeyParts,
};

use settings::Env;

/// The private key tokens are signed with.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, the RFC 7638 thumbprint of the public key.
    pub kid: String,
    pub(crate) encoding: EncodingKey,
    public: RsaPublicKey,
}

impl SigningKey {
    /// Parses a PKCS#8 or PKCS#1 PEM private key.
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|e| anyhow::anyhow!("not an RSA private key in PEM form: {e}"))?;
        anyhow::ensure!(
            private.size() * 8 >= 2048,
            "RSA keys must have at least 2048 bits"
        );
        Self::from_private(&private)
    }

    /// Generates a fresh 2048-bit key; returns it with its PKCS#8 PEM.
    pub fn generate() -> anyhow::Result<(Self, String)> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
        let pem = private.to_pkcs8_pem(LineEnding::LF)?.to_string();
        Ok((Self::from_private(&private)?, pem))
    }

    /// The public half in SPKI PEM, for another component's `JWT_PUBLIC_KEYS_FILE`.
    pub fn public_pem(&self) -> anyhow::Result<String> {
        use rsa::pkcs8::EncodePublicKey;
        Ok(self.public.to_public_key_pem(LineEnding::LF)?)
    }

    fn from_private(private: &RsaPrivateKey) -> anyhow::Result<Self> {
        let pem = private.to_pkcs8_pem(LineEnding::LF)?;
        let public = private.to_public_key();
        Ok(Self {
            kid: thumbprint(&public),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes())?,
            public,
        })
    }
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key.
fn thumbprint(public: &RsaPublicKey) -> String {
    let (n, e) = components(public);
    // Members in lexicographic order, no whitespace, as the RFC requires.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn components(public: &RsaPublicKey) -> (String, String) {
    (
        URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    )
}

/// The signing key (if this component signs) and every key it accepts.
#[derive(Clone, Default)]
pub struct KeyRing {
    signing: Option<SigningKey>,
    public: BTreeMap<String, RsaPublicKey>,
}

impl KeyRing {
    /// A ring that signs with `key` and accepts it.
    pub fn with_signing_key(key: SigningKey) -> Self {
        let mut ring = Self::default();
        ring.public.insert(key.kid.clone(), key.public.clone());
        ring.signing = Some(key);
        ring
    }

    /// Also accepts (and publishes) tokens signed by the public key in `pem`.
    pub fn add_public_pem(&mut self, pem: &str) -> anyhow::Result<String> {
        let public = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|e| anyhow::anyhow!("not an RSA public key in PEM form: {e}"))?;
        let kid = thumbprint(&public);
        self.public.insert(kid.clone(), public);
        Ok(kid)
    }

    /// The key new tokens are signed with, if this ring signs.
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    pub(crate) fn decoding_keys(&self) -> anyhow::Result<BTreeMap<String, DecodingKey>> {
        self.public
            .iter()
            .map(|(kid, public)| {
                let (n, e) = components(public);
                Ok((kid.clone(), DecodingKey::from_rsa_components(&n, &e)?))
            })
            .collect()
    }

    /// The JWKS document (`/.well-known/jwks.json`) publishing every accepted key.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .public
            .iter()
            .map(|(kid, public)| {
                let (n, e) = components(public);
                serde_json::json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e,
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Reads `JWT_PRIVATE_KEY` (PEM) or `JWT_PRIVATE_KEY_FILE`, plus
    /// `JWT_PUBLIC_KEYS_FILE` (one or more PEM public keys still accepted, for
    /// rotation). `None` when no private key is configured.
    pub fn from_env(env: &mut Env) -> Option<Self> {
        let pem = match (env.get("JWT_PRIVATE_KEY"), env.get("JWT_PRIVATE_KEY_FILE")) {
            (Some(pem), _) => pem,
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(pem) => pem,
                Err(e) => {
                    env.problem(format!("JWT_PRIVATE_KEY_FILE={path}: {e}"));
                    return None;
                }
            },
            (None, None) => return None,
        };
        let mut ring = match SigningKey::from_pem(&pem) {
            Ok(key) => Self::with_signing_key(key),
            Err(e) => {
                env.problem(format!("JWT private key: {e}"));
                return None;
            }
        };
        if let Some(path) = env.get("JWT_PUBLIC_KEYS_FILE") {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    for pem in split_pem_blocks(&text) {
                        if let Err(e) = ring.add_public_pem(&pem) {
                            env.problem(format!("JWT_PUBLIC_KEYS_FILE={path}: {e}"));
                        }
                    }
                }
                Err(e) => env.problem(format!("JWT_PUBLIC_KEYS_FILE={path}: {e}")),
            }
        }
        Some(ring)
    }

    /// For components that only verify: the public keys in `JWT_PUBLIC_KEYS_FILE`
    /// (PEM, one or more; the users subgraph's `grocery keygen` prints its key).
    /// `None` when unset.
    pub fn verifying_from_env(env: &mut Env) -> Option<Self> {
        let path = env.get("JWT_PUBLIC_KEYS_FILE")?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                env.problem(format!("JWT_PUBLIC_KEYS_FILE={path}: {e}"));
                return None;
            }
        };
        let mut ring = Self::default();
        for pem in split_pem_blocks(&text) {
            if let Err(e) = ring.add_public_pem(&pem) {
                env.problem(format!("JWT_PUBLIC_KEYS_FILE={path}: {e}"));
            }
        }
        if ring.public.is_empty() {
            env.problem(format!("JWT_PUBLIC_KEYS_FILE={path} holds no public key"));
        }
        Some(ring)
    }

    /// [`verifying_from_env`](Self::verifying_from_env), else `fallback` (the
    /// development keys); with neither, a configuration problem and an empty ring.
    pub fn verifying_from_env_or(env: &mut Env, fallback: Option<KeyRing>) -> KeyRing {
        match (Self::verifying_from_env(env), fallback) {
            (Some(ring), _) | (None, Some(ring)) => ring,
            (None, None) => {
                env.problem(
                    "JWT_PUBLIC_KEYS_FILE is required (the users subgraph's public keys, to verify tokens)",
                );
                KeyRing::default()
            }
        }
    }

    /// The development ring: `dir/signing.pem`, generated (mode 0600) on first use.
    pub fn load_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("signing.pem");
        let key = if path.exists() {
            SigningKey::from_pem(&std::fs::read_to_string(&path)?)?
        } else {
            std::fs::create_dir_all(dir)?;
            let (key, pem) = SigningKey::generate()?;
            write_private(&path, &pem)?;
            tracing::info!(path = %path.display(), kid = %key.kid, "generated a development signing key");
            key
        };
        Ok(Self::with_signing_key(key))
    }
}

fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(pem.as_bytes())?;
    Ok(())
}

fn split_pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_kid_and_publishes_it() {
        let (key, pem) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(key.kid, again.kid);
        let ring = KeyRing::with_signing_key(again);
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"][0]["kid"], key.kid.as_str());
        assert_eq!(jwks["keys"][0]["alg"], "RS256");
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
    }

    #[test]
    fn rejects_garbage_and_small_keys() {
        assert!(SigningKey::from_pem("not a key").is_err());
        let small = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert!(SigningKey::from_pem(&pem).is_err());
    }

    #[test]
    fn verifying_keys_fall_back_or_are_required() {
        let mut with_fallback = Env::from_fn(|_| None);
        KeyRing::verifying_from_env_or(&mut with_fallback, Some(KeyRing::default()));
        assert!(with_fallback.finish().is_ok());

        let mut without = Env::from_fn(|_| None);
        KeyRing::verifying_from_env_or(&mut without, None);
        let problems = without.finish().unwrap_err().0;
        assert!(
            problems[0].starts_with("JWT_PUBLIC_KEYS_FILE is required"),
            "{problems:?}"
        );
    }

    #[test]
    fn splits_concatenated_pem_blocks() {
        let text = "-----BEGIN A-----\nx\n-----END A-----\n-----BEGIN B-----\ny\n-----END B-----\n";
        assert_eq!(split_pem_blocks(text).len(), 2);
    }
}
