//! Login throttling: failed logins are counted per account and per client
//! address, and past a threshold each further attempt must wait a growing
//! delay (1 s, 2 s, 4 s … capped) before it is even checked.
//!
//! The counters live in PostgreSQL (`login_throttle`), not in memory or
//! Redis: every replica must see the same count or an attacker simply
//! spreads guesses across replicas, PostgreSQL is the one store every
//! deployment has (Redis is optional), and a login already costs an argon2
//! verification, beside which two more small statements are noise.
//!
//! An attempt is counted *before* its password is checked, in the same
//! statement that decides whether it may go on, so a burst of parallel
//! guesses cannot all slip through before the first failure is written; a
//! success takes its count back (and clears its account's count entirely).
//! Unknown device ids are counted like known ones, so a refusal tells
//! nothing about which accounts exist. Attempts refused for waiting are not
//! counted: they cost nothing, and counting them would let anyone keep
//! someone else's account locked forever.
//!
//! Which address a login counts against: the users port sits behind the
//! gateway, so its TCP peer is usually the gateway, not the client. A
//! forwarded address (`x-forwarded-for`, right-most entry) is believed only
//! from a peer in `TRUSTED_PROXIES` (default: loopback and private networks,
//! where our own components run); a trusted peer that forwards nothing leaves
//! the login counted per account only (lumping every client of one gateway
//! together would let one attacker lock everybody out); any other peer is
//! itself the client.

use std::{net::IpAddr, time::Duration};

use diesel::sql_types::{Double, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kit::{config::Env, db::PgPool, server::ClientAddress};

use crate::error::UsersError;

/// How failed logins are throttled, and whose forwarded address is believed.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failures of one account (device id) allowed before delays start.
    pub account_failures: i32,
    /// Failures from one client address allowed before delays start (higher:
    /// many people may share one address).
    pub address_failures: i32,
    /// A counter untouched this long starts over.
    pub window: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// Peers whose `x-forwarded-for` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<Network>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            account_failures: 5,
            address_failures: 20,
            window: Duration::from_secs(3600),
            max_delay: Duration::from_secs(900),
            trusted_proxies: Network::PRIVATE.to_vec(),
        }
    }
}

impl ThrottleConfig {
    /// Reads `TRUSTED_PROXIES` (comma-separated addresses or CIDR blocks;
    /// `none` trusts no peer); the rest keeps its defaults.
    pub fn from_env(env: &mut Env) -> Self {
        let mut cfg = Self::default();
        if let Some(list) = env.get("TRUSTED_PROXIES") {
            let parsed: Result<Vec<Network>, String> = list
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty() && !item.eq_ignore_ascii_case("none"))
                .map(str::parse)
                .collect();
            match parsed {
                Ok(networks) => cfg.trusted_proxies = networks,
                Err(bad) => env.problem(format!(
                    "TRUSTED_PROXIES: {bad:?} is not an address or CIDR block (e.g. 10.0.0.0/8)"
                )),
            }
        }
        cfg
    }

    /// The address a login from `client` counts against, if any (see the module doc).
    pub fn address_of(&self, client: &ClientAddress) -> Option<IpAddr> {
        let peer = client.peer?;
        if self.trusted_proxies.iter().any(|n| n.contains(peer)) {
            client.forwarded
        } else {
            Some(peer)
        }
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`); a bare address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Loopback and private networks: where a deployment's own components run.
    pub const PRIVATE: [Network; 6] = [
        Network::v4([127, 0, 0, 0], 8),
        Network::v4([10, 0, 0, 0], 8),
        Network::v4([172, 16, 0, 0], 12),
        Network::v4([192, 168, 0, 0], 16),
        Network {
            base: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
        // Unique local addresses (fc00::/7), IPv6's private networks.
        Network {
            base: IpAddr::V6(std::net::Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
            prefix: 7,
        },
    ];

    const fn v4(octets: [u8; 4], prefix: u8) -> Self {
        let [a, b, c, d] = octets;
        Self {
            base: IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    /// Whether `addr` lies in this network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let (base, addr, bits) = match (self.base, addr) {
            (IpAddr::V4(b), IpAddr::V4(a)) => (u32::from(b).into(), u32::from(a).into(), 32),
            (IpAddr::V6(b), IpAddr::V6(a)) => (u128::from(b), u128::from(a), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (base >> shift) == (addr >> shift)
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let base: IpAddr = addr.parse().map_err(|_| text.to_owned())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max),
            None => Some(max),
        }
        .ok_or_else(|| text.to_owned())?;
        Ok(Self { base, prefix })
    }
}

/// The counters one login attempt is charged to.
#[derive(Clone, Debug)]
pub struct Attempt {
    account: String,
    address: Option<String>,
}

impl Attempt {
    /// An attempt at `device_id` (normalised) from `address`.
    pub fn new(device_id: &str, address: Option<IpAddr>) -> Self {
        Self {
            account: format!("account:{device_id}"),
            address: address.map(|a| format!("address:{a}")),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Wait {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// The delay owed after a counter's last attempt, as SQL over `t.failures`,
/// with the threshold and the cap (seconds) in the placeholders named. The
/// exponent is bounded so the power cannot overflow.
fn delay(threshold: &str, cap: &str) -> String {
    format!(
        "make_interval(secs => CASE WHEN t.failures < {threshold} THEN 0 \
         ELSE least(power(2, least(t.failures - {threshold}, 30)), {cap}) END)"
    )
}

/// Counts `attempt` against its counters, or refuses it with
/// `UsersError::Throttled` when one of them must still wait (then nothing is counted).
pub async fn admit(
    pool: &PgPool,
    cfg: &ThrottleConfig,
    attempt: &Attempt,
) -> Result<(), UsersError> {
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        charge(conn, cfg, &attempt.account, cfg.account_failures).await?;
        if let Some(address) = &attempt.address {
            // A refusal here rolls the account's count back with it.
            charge(conn, cfg, address, cfg.address_failures).await?;
        }
        Ok(())
    })
    .await
}

async fn charge(
    conn: &mut AsyncPgConnection,
    cfg: &ThrottleConfig,
    key: &str,
    threshold: i32,
) -> Result<(), UsersError> {
    // One statement decides and counts, under the row's lock: two attempts
    // cannot both see the counter below the threshold. A refused attempt
    // updates no row.
    let counted = diesel::sql_query(format!(
        "INSERT INTO login_throttle AS t (key, failures, last_at) VALUES ($1, 1, now()) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN t.last_at < now() - make_interval(secs => $2) THEN 1 \
                           ELSE t.failures + 1 END, \
           last_at = now() \
         WHERE t.last_at < now() - make_interval(secs => $2) \
            OR now() >= t.last_at + {}",
        delay("$3", "$4")
    ))
    .bind::<Text, _>(key)
    .bind::<Double, _>(cfg.window.as_secs_f64())
    .bind::<Integer, _>(threshold)
    .bind::<Double, _>(cfg.max_delay.as_secs_f64())
    .execute(conn)
    .await?;
    if counted == 1 {
        return Ok(());
    }
    let wait: Wait = diesel::sql_query(format!(
        "SELECT greatest(ceil(extract(epoch FROM t.last_at + {} - now())), 1)::float8 \
           AS seconds \
         FROM login_throttle t WHERE t.key = $1",
        delay("$2", "$3")
    ))
    .bind::<Text, _>(key)
    .bind::<Integer, _>(threshold)
    .bind::<Double, _>(cfg.max_delay.as_secs_f64())
    .get_result(conn)
    .await?;
    Err(UsersError::Throttled {
        retry_after: wait.seconds as u64,
    })
}

/// A login succeeded: its account starts over, and its address gets its count back.
pub async fn succeeded(pool: &PgPool, attempt: &Attempt) -> Result<(), UsersError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("DELETE FROM login_throttle WHERE key = $1")
        .bind::<Text, _>(&attempt.account)
        .execute(&mut conn)
        .await?;
    if let Some(address) = &attempt.address {
        diesel::sql_query(
            "UPDATE login_throttle SET failures = greatest(failures - 1, 0) WHERE key = $1",
        )
        .bind::<Text, _>(address)
        .execute(&mut conn)
        .await?;
    }
    Ok(())
}

/// Forgets counters untouched for a whole window (they would start over anyway),
/// so device ids sprayed by an attacker do not pile up.
pub async fn prune(pool: &PgPool, cfg: &ThrottleConfig) -> Result<usize, UsersError> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "DELETE FROM login_throttle WHERE last_at < now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(cfg.window.as_secs_f64())
    .execute(&mut conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let one: Network = "203.0.113.9".parse().unwrap();
        assert!(one.contains("203.0.113.9".parse().unwrap()));
        assert!(!one.contains("203.0.113.10".parse().unwrap()));
        assert!(one.contains("::ffff:203.0.113.9".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::1/129"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_come_from_the_environment() {
        let env = |value: &'static str| {
            Env::from_fn(move |name| (name == "TRUSTED_PROXIES").then(|| value.to_owned()))
        };
        let mut set = env("10.0.0.0/8, 192.0.2.1");
        let cfg = ThrottleConfig::from_env(&mut set);
        set.finish().expect("valid");
        assert_eq!(cfg.trusted_proxies.len(), 2);
        assert!(cfg.trusted_proxies[1].contains("192.0.2.1".parse().unwrap()));
        let mut none = env("none");
        assert!(
            ThrottleConfig::from_env(&mut none)
                .trusted_proxies
                .is_empty()
        );
        let mut bad = env("10.0.0.0/8,gateway");
        ThrottleConfig::from_env(&mut bad);
        let problems = bad.finish().unwrap_err().0.join("\n");
        assert!(
            problems.contains("TRUSTED_PROXIES") && problems.contains("gateway"),
            "{problems}"
        );
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_peers() {
        let cfg = ThrottleConfig::default();
        let client = |peer: &str, forwarded: Option<&str>| ClientAddress {
            peer: Some(peer.parse().unwrap()),
            forwarded: forwarded.map(|f| f.parse().unwrap()),
        };
        // The gateway on loopback or a private network speaks for its client.
        assert_eq!(
            cfg.address_of(&client("127.0.0.1", Some("198.51.100.4"))),
            Some("198.51.100.4".parse().unwrap())
        );
        assert_eq!(
            cfg.address_of(&client("10.2.3.4", Some("198.51.100.4"))),
            Some("198.51.100.4".parse().unwrap())
        );
        // …and when it says nothing, no address counts (not the gateway's own).
        assert_eq!(cfg.address_of(&client("10.2.3.4", None)), None);
        // A public peer is the client, whatever it claims.
        assert_eq!(
            cfg.address_of(&client("203.0.113.7", Some("198.51.100.4"))),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(cfg.address_of(&ClientAddress::default()), None);
    }
}
