//! Where a component listens: `<NAME>_HOST`/`<NAME>_PORT`, else
//! `HOST`/`PORT`, else 127.0.0.1 and the component's own port.

use std::net::{IpAddr, SocketAddr};

use crate::{Env, Kind, Var, key};

/// The variables [`addr`] reads.
pub const ENV: &[Var] = &[
    Var {
        file: &[
            key("listen.host", Kind::Text),
            key("listen.port", Kind::Integer),
        ],
        names: &["HOST", "PORT"],
        used_by: "`serve`",
        default: "`127.0.0.1`, component port",
        meaning: "listen address (`<NAME>_HOST`/`<NAME>_PORT` win)",
    },
    Var {
        file: &[],
        names: &["<NAME>_HOST", "<NAME>_PORT"],
        used_by: "each component",
        default: "`HOST`, `PORT`",
        meaning: "one component's listen address: `GATEWAY_PORT` the API's (`4000`), \
                  `USERS_PORT`, `CATALOG_PORT`, `INVENTORY_PORT`, `ORDERS_PORT`, \
                  `LOGISTICS_PORT` the subgraphs' (`4001` … `4005`); `0`: any free port",
    },
];

/// The listen address of the component called `name` (`users`, `gateway`),
/// whose own port is `port`; `localhost` is 127.0.0.1.
pub fn addr(env: &mut Env, name: &str, port: u16) -> SocketAddr {
    let upper = name.to_uppercase();
    let host = env
        .get(&format!("{upper}_HOST"))
        .or_else(|| env.get("HOST"))
        .unwrap_or_else(|| "127.0.0.1".into());
    let own_port = format!("{upper}_PORT");
    let port = if env.get(&own_port).is_some() {
        env.parse_or(&own_port, port)
    } else {
        env.parse_or("PORT", port)
    };
    let ip = match host.as_str() {
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        other => other.trim_matches(|c| c == '[' || c == ']').parse(),
    };
    match ip {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => {
            env.problem(format!("HOST={host:?} is not an IP address"));
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> Env {
        Env::from_fn(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn a_components_own_variables_win_over_the_shared_ones() {
        let mut env = env_of(&[("HOST", "::1"), ("PORT", "9000"), ("USERS_PORT", "0")]);
        assert_eq!(addr(&mut env, "users", 4001), "[::1]:0".parse().unwrap());
        assert_eq!(
            addr(&mut env, "gateway", 4000),
            "[::1]:9000".parse().unwrap()
        );
        assert!(env.finish().is_ok());
        let mut env = env_of(&[("GATEWAY_HOST", "localhost")]);
        assert_eq!(
            addr(&mut env, "gateway", 4000),
            "127.0.0.1:4000".parse().unwrap()
        );
        assert!(ENV.iter().any(|v| v.declares("GATEWAY_HOST")));
    }

    #[test]
    fn a_bad_host_and_a_bad_port_are_both_listed() {
        let mut env = env_of(&[("ORDERS_HOST", "orders.local"), ("PORT", "http")]);
        assert_eq!(
            addr(&mut env, "orders", 4004),
            "127.0.0.1:4004".parse().unwrap()
        );
        let problems = env.finish().unwrap_err().0;
        assert_eq!(
            problems,
            [
                "PORT=\"http\" is not valid: invalid digit found in string",
                "HOST=\"orders.local\" is not an IP address",
            ]
        );
    }
}
