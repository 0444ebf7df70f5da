//! The components the binary can run, and how each is configured and started.

use std::net::SocketAddr;

use clap::ValueEnum;
use kit::config::Env;

/// A runnable part of grocery.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Component {
    /// Accounts, sessions (dual JWT) and profiles.
    Users,
}

impl Component {
    /// Every component, in start-up order.
    pub const ALL: [Component; 1] = [Component::Users];

    /// The lower-case name used in commands, env variables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Component::Users => "users",
        }
    }

    /// The port a component listens on unless configured.
    pub fn default_port(self) -> u16 {
        match self {
            Component::Users => 4001,
        }
    }

    /// The federation SDL of a subgraph.
    pub fn sdl(self) -> String {
        match self {
            Component::Users => users::sdl(),
        }
    }
}

/// `HOST`/`PORT` (or `<NAME>_HOST`/`<NAME>_PORT`), default 127.0.0.1 and the component's port.
pub fn listen_addr(env: &mut Env, component: Component) -> SocketAddr {
    let upper = component.name().to_uppercase();
    let host = env
        .get(&format!("{upper}_HOST"))
        .or_else(|| env.get("HOST"))
        .unwrap_or_else(|| "127.0.0.1".into());
    let port_var = format!("{upper}_PORT");
    let port = if env.get(&port_var).is_some() {
        env.parse_or(&port_var, component.default_port())
    } else {
        env.parse_or("PORT", component.default_port())
    };
    let ip = match host.as_str() {
        "localhost" => Ok(std::net::IpAddr::from([127, 0, 0, 1])),
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

/// `grocery serve <component>`: migrate, then serve until SIGTERM/Ctrl-C.
pub async fn serve(component: Component) -> anyhow::Result<()> {
    let mut env = Env::new();
    let addr = listen_addr(&mut env, component);
    let router = match component {
        Component::Users => {
            let cfg = users::UsersConfig::from_env(&mut env, None);
            env.finish()?;
            users::router(&cfg).await?
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(component = component.name(), %addr, "listening");
    kit::server::serve(listener, router, crate::shutdown_signal()).await?;
    tracing::info!(component = component.name(), "stopped");
    Ok(())
}

/// `grocery migrate [component]`.
pub async fn migrate(only: Option<Component>) -> anyhow::Result<()> {
    let mut env = Env::new();
    let targets: Vec<_> = only.map_or(Component::ALL.to_vec(), |c| vec![c]);
    let configs: Vec<_> = targets
        .iter()
        .map(|c| (*c, kit::db::DbConfig::from_env(&mut env, c.name())))
        .collect();
    env.finish()?;
    for (component, db) in configs {
        let migrations = match component {
            Component::Users => &users::MIGRATIONS,
        };
        kit::db::migrate(&db, migrations).await?;
    }
    Ok(())
}
