//! Identity as every subgraph sees it: the auth crate's tokens, keys and
//! access cut-offs (re-exported here), the subgraphs' [`Role`] enum read from
//! a token's role name, the per-request [`Auth`] context with role guards,
//! and keeping the cut-offs filled from the event bus ([`revocation_feed`]).
//!
//! The users subgraph signs tokens with the active key of a [`KeyRing`]; every
//! other component verifies them with a [`Verifier`] built from the same ring
//! or from the JWKS the users subgraph serves. Every verifier also refuses
//! access tokens signed before the account's access last changed
//! ([`revocation`]), a table each process keeps filled ([`revocation_feed`]).

pub mod revocation_feed;

pub use ::auth::*;

use async_graphql::{Context, Enum};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    config::Var,
    error::{ApiError, ApiResult},
};

/// The variables of keys ([`KeyRing::from_env`], [`KeyRing::verifying_from_env`]),
/// tokens ([`TokenSettings::from_env`]) and the cut-off feed
/// ([`revocation_feed::FeedConfig::from_env`]).
pub const ENV: &[Var] = &[
    Var {
        file: &[],
        names: &["JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE"],
        used_by: "users",
        default: "required unless `JWT_PRIVATE_KEY` or `JWT_PRIVATE_KEY_FILE` (`dev`: \
                  `.grocery/keys/signing.pem`)",
        meaning: "RSA private key (PEM, ≥ 2048 bits) that signs tokens",
    },
    Var {
        file: &[crate::config::key(
            "auth.public_keys_file",
            crate::config::Kind::Text,
        )],
        names: &["JWT_PUBLIC_KEYS_FILE"],
        used_by: "every component",
        default: "`dev`: the dev key; users: none; `serve gateway`: none (nor `JWKS_URL`: no \
                  token is verified at the edge, see [Edge authentication](#edge-authentication))",
        meaning: "PEM public key(s) of the users subgraph, which the others verify tokens with \
                  (`grocery keygen` prints it); to users, extra keys still accepted and published \
                  (key rotation)",
    },
    Var {
        file: &[
            crate::config::key("auth.issuer", crate::config::Kind::Text),
            crate::config::key("auth.audience", crate::config::Kind::Text),
        ],
        names: &["JWT_ISSUER", "JWT_AUDIENCE"],
        used_by: "users (signs), every verifier",
        default: "`grocery-users`, `grocery`",
        meaning: "`iss` / `aud` of every token",
    },
    Var {
        file: &[],
        names: &["ACCESS_TOKEN_TTL_SECS"],
        used_by: "users",
        default: "`900` (15 min)",
        meaning: "access-token lifetime",
    },
    Var {
        file: &[],
        names: &["REFRESH_TOKEN_TTL_SECS"],
        used_by: "users",
        default: "`604800` (7 days)",
        meaning: "refresh-token lifetime",
    },
    Var {
        file: &[crate::config::key(
            "auth.internal_rpc_token",
            crate::config::Kind::Text,
        )],
        names: &["INTERNAL_RPC_TOKEN"],
        used_by: "every subgraph, gateway, `seed`",
        default: "required (`dev`: random per run; a gateway that verifies no token does not \
                  read it)",
        meaning: "service credential of the gRPC stock API and of users' list of access changes",
    },
    Var {
        file: &[crate::config::key(
            "auth.revocations_url",
            crate::config::Kind::Text,
        )],
        names: &["REVOCATIONS_URL"],
        used_by: "every subgraph but users, gateway",
        default: "`USERS_URL` or `JWKS_URL` on users' host, else \
                  `http://127.0.0.1:4001/internal/access-changes`",
        meaning: "users' list of recent access changes, loaded at start and every 15 s",
    },
];

/// What a principal may do. Stored as its upper-case name.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// People and smart fridges that shop.
    Customer,
    /// Restocking vehicles and robots.
    Truck,
    /// Integrations; persisted documents only.
    Partner,
    /// Operators.
    Admin,
}

impl Role {
    /// The name used in tokens and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "CUSTOMER",
            Self::Truck => "TRUCK",
            Self::Partner => "PARTNER",
            Self::Admin => "ADMIN",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CUSTOMER" => Ok(Self::Customer),
            "TRUCK" => Ok(Self::Truck),
            "PARTNER" => Ok(Self::Partner),
            "ADMIN" => Ok(Self::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// The name a token carries for this role.
impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        RoleName::from_static(role.as_str())
    }
}

/// A token's role is this one: `claims.role == Role::Admin`. A name that is
/// none of the four (another issuer's role) equals none of them.
impl PartialEq<Role> for RoleName {
    fn eq(&self, role: &Role) -> bool {
        self.as_str() == role.as_str()
    }
}

/// Who is calling, attached to every GraphQL request by the server.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No bearer token was sent.
    #[default]
    Anonymous,
    /// A verified access token.
    User(Claims),
    /// A bearer token was sent but refused. Operations that need no identity
    /// (login, refresh) still run; anything that asks who is calling fails.
    Invalid(TokenError),
}

impl Auth {
    /// The caller's claims, or `UNAUTHENTICATED`.
    pub fn claims(&self) -> ApiResult<&Claims> {
        match self {
            Self::User(claims) => Ok(claims),
            Self::Anonymous => Err(ApiError::Unauthenticated(
                "this operation needs a signed-in user".into(),
            )),
            Self::Invalid(TokenError::CutoffsUnknown) => Err(ApiError::Unavailable(
                TokenError::CutoffsUnknown.to_string(),
            )),
            Self::Invalid(err) => Err(ApiError::Unauthenticated(err.to_string())),
        }
    }

    /// The caller's user id, or `UNAUTHENTICATED`.
    pub fn user_id(&self) -> ApiResult<Uuid> {
        Ok(self.claims()?.sub)
    }

    /// The caller's claims if their role is one of `roles`; `FORBIDDEN` otherwise.
    pub fn require_role(&self, roles: &[Role]) -> ApiResult<&Claims> {
        let claims = self.claims()?;
        if roles.iter().any(|role| claims.role == *role) {
            Ok(claims)
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not do this",
                claims.role
            )))
        }
    }

    /// Allows the user `owner` themself or an ADMIN; `FORBIDDEN` for others.
    pub fn require_self_or_admin(&self, owner: Uuid) -> ApiResult<&Claims> {
        let claims = self.claims()?;
        if claims.sub == owner || claims.role == Role::Admin {
            Ok(claims)
        } else {
            Err(ApiError::Forbidden(
                "only the owner or an admin may see this".into(),
            ))
        }
    }
}

/// The caller's access token as it was sent, attached beside a verified
/// [`Auth::User`]: a subgraph that asks another one for the caller's data
/// (an entity lookup) presents it, and the owner verifies it again.
#[derive(Clone, Debug)]
pub struct BearerToken(pub std::sync::Arc<str>);

/// Access to the request's [`Auth`] from a resolver.
pub trait AuthExt {
    /// The caller; anonymous when the server attached nothing.
    fn auth(&self) -> &Auth;
}

impl AuthExt for Context<'_> {
    fn auth(&self) -> &Auth {
        static ANONYMOUS: Auth = Auth::Anonymous;
        self.data_opt::<Auth>().unwrap_or(&ANONYMOUS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_token_name() {
        for role in [Role::Customer, Role::Truck, Role::Partner, Role::Admin] {
            let name = RoleName::from(role);
            assert_eq!(name, role);
            assert_eq!(name.as_str().parse::<Role>(), Ok(role));
        }
        assert_ne!(RoleName::from_static("AUDITOR"), Role::Admin);
    }

    #[test]
    fn a_role_nobody_here_knows_is_forbidden_everything() {
        let auth = Auth::User(Claims {
            iss: String::new(),
            aud: String::new(),
            sub: Uuid::new_v4(),
            role: RoleName::from_static("AUDITOR"),
            exp: 0,
            iat: 0,
            token_type: TokenType::Access,
            jti: Uuid::new_v4(),
            fam: None,
            access_epoch: 0,
        });
        assert!(matches!(
            auth.require_role(&[Role::Customer, Role::Truck, Role::Partner, Role::Admin]),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            auth.require_self_or_admin(Uuid::new_v4()),
            Err(ApiError::Forbidden(_))
        ));
    }
}
