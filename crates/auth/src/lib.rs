//! Tokens as every grocery component sees them: RSA key material and its
//! JWKS ([`KeyRing`], [`SigningKey`]), the claims and their verification
//! ([`Claims`], [`Verifier`]), the per-account access cut-offs every
//! verifier checks ([`revocation`]), and where callers put their token
//! ([`init_token`]).
//!
//! The users subgraph signs with the active key of a [`KeyRing`]; every other
//! component verifies with a [`Verifier`] built from the same ring or from the
//! JWKS the users subgraph serves. Used by kit (which adds the GraphQL side:
//! the request's `Auth`, role guards, keeping the cut-offs filled from the
//! event bus), by the gateway at the edge, by the launcher and by the testing
//! crate.
//!
//! It knows no GraphQL and no domain: a role is a name ([`RoleName`]); kit
//! reads the subgraphs' `Role` enum from it, and the gateway learns which
//! names matter to it from configuration. It may use only the config crate.

mod bearer;
mod keys;
pub mod revocation;
mod role;
mod tokens;

pub use bearer::init_token;
pub use keys::{KeyRing, SigningKey};
pub use revocation::{AccessChange, Revocations};
pub use role::{InvalidRoleName, RoleName};
pub use tokens::{Claims, TokenError, TokenSettings, TokenType, Verifier};
