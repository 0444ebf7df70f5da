//! The registry of what the binary runs: the gateway and the five
//! subgraphs, each with its name, its `Config` (read from the environment,
//! every problem listed at once) and its `start`, and the variables each
//! declares ([`ENV`]). `grocery serve` runs one component ([`serve`]),
//! `grocery dev` all of them (`crate::dev`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use gateway::pipeline::usage::admin;
use kit::{
    auth::{
        KeyRing, Revocations,
        revocation_feed::{self, Feed},
    },
    component::Started,
    config::{Env, Var},
};
use tokio::{sync::watch, task::JoinSet};

/// A runnable part of grocery.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Component {
    /// The federation gateway in front of every subgraph (port 4000).
    Gateway,
    /// Accounts, sessions (dual JWT) and profiles.
    Users,
    /// Products.
    Catalog,
    /// Stock, batches, reservations, pricing; serves the internal stock API.
    Inventory,
    /// Cart, checkout, payments, order lifecycle and live order status.
    Orders,
    /// Truck restocks and shipments.
    Logistics,
}

/// A subgraph: a component with a schema of its own, in the database and in the supergraph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Subgraph {
    /// Accounts, sessions (dual JWT) and profiles.
    Users,
    /// Products.
    Catalog,
    /// Stock, batches, reservations, pricing; serves the internal stock API.
    Inventory,
    /// Cart, checkout, payments, order lifecycle and live order status.
    Orders,
    /// Truck restocks and shipments.
    Logistics,
}

/// Every declared variable, in README's order: what every component reads,
/// then each component's own, then the launcher's (see `grocery env`).
pub const ENV: &[&[Var]] = &[
    kit::config::listen::ENV,
    kit::db::ENV,
    kit::auth::ENV,
    kit::events::ENV,
    gateway::config::ENV,
    users::ENV,
    catalog::ENV,
    inventory::ENV,
    orders::ENV,
    logistics::ENV,
    crate::dev::ENV,
    kit::telemetry::ENV,
    kit::telemetry::otel::ENV,
];

/// `serve gateway`'s settings from the environment over `file` (if any) and,
/// read by the launcher beside them, where its table of access cut-offs is
/// filled from (the feed is subgraph plumbing the gateway does not depend
/// on). A gateway that verifies no token has no cut-offs: no feed, no wait.
/// Every problem is listed, those of the file's values with its line and key.
pub fn gateway_config(
    file: Option<&Path>,
) -> Result<
    (
        gateway::Config,
        Option<revocation_feed::FeedConfig>,
        kit::events::BusConfig,
    ),
    kit::config::ConfigError,
> {
    let file = file
        .map(|path| gateway::config::ConfigFile::read(path, ENV).map(std::sync::Arc::new))
        .transpose()?;
    let mut env = match &file {
        Some(file) => file.process_env(),
        None => Env::new(),
    };
    let config = gateway::Config::read(&mut env);
    let feed = config
        .keys
        .is_some()
        .then(|| revocation_feed::FeedConfig::from_env(&mut env));
    // The bus the entity cache hears product and stock changes on.
    let bus = kit::events::BusConfig::from_env(&mut env);
    match (env.finish(), file) {
        (Ok(()), _) => Ok((config, feed, bus)),
        (Err(err), None) => Err(err),
        (Err(err), Some(file)) => Err(file.locate(err, |name| {
            std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
        })),
    }
}

/// Checks a gateway configuration file's keys, types and values (`grocery config-check`).
pub fn check_gateway_config(path: &Path) -> Result<(), kit::config::ConfigError> {
    let file = gateway::config::ConfigFile::read(path, ENV)?;
    match file.problems() {
        [] => Ok(()),
        problems => Err(kit::config::ConfigError(problems.to_vec())),
    }
}

/// README's configuration table: every row of [`ENV`].
pub fn env_table() -> String {
    kit::config::markdown(ENV.iter().flat_map(|rows| rows.iter()))
}

impl Component {
    /// The subgraph this is, if it is one.
    pub fn subgraph(self) -> Option<Subgraph> {
        match self {
            Component::Gateway => None,
            Component::Users => Some(Subgraph::Users),
            Component::Catalog => Some(Subgraph::Catalog),
            Component::Inventory => Some(Subgraph::Inventory),
            Component::Orders => Some(Subgraph::Orders),
            Component::Logistics => Some(Subgraph::Logistics),
        }
    }
}

impl Subgraph {
    /// Every subgraph, in start-up order (inventory's stock API first: catalog and orders call it).
    pub const ALL: [Subgraph; 5] = [
        Subgraph::Inventory,
        Subgraph::Catalog,
        Subgraph::Users,
        Subgraph::Orders,
        Subgraph::Logistics,
    ];

    /// The lower-case name used in commands, env variables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Subgraph::Users => users::NAME,
            Subgraph::Catalog => catalog::NAME,
            Subgraph::Inventory => inventory::NAME,
            Subgraph::Orders => orders::NAME,
            Subgraph::Logistics => logistics::NAME,
        }
    }

    /// The HTTP port it listens on unless configured.
    pub fn default_port(self) -> u16 {
        match self {
            Subgraph::Users => users::DEFAULT_PORT,
            Subgraph::Catalog => catalog::DEFAULT_PORT,
            Subgraph::Inventory => inventory::DEFAULT_PORT,
            Subgraph::Orders => orders::DEFAULT_PORT,
            Subgraph::Logistics => logistics::DEFAULT_PORT,
        }
    }

    /// Its federation SDL.
    pub fn sdl(self) -> String {
        match self {
            Subgraph::Users => users::sdl(),
            Subgraph::Catalog => catalog::sdl(),
            Subgraph::Inventory => inventory::sdl(),
            Subgraph::Orders => orders::sdl(),
            Subgraph::Logistics => logistics::sdl(),
        }
    }

    /// Its embedded migrations.
    pub fn migrations(self) -> &'static diesel_migrations::EmbeddedMigrations {
        match self {
            Subgraph::Users => &users::MIGRATIONS,
            Subgraph::Catalog => &catalog::MIGRATIONS,
            Subgraph::Inventory => &inventory::MIGRATIONS,
            Subgraph::Orders => &orders::MIGRATIONS,
            Subgraph::Logistics => &logistics::MIGRATIONS,
        }
    }
}

/// A subgraph's configuration.
pub enum Config {
    Users(users::Config),
    Catalog(catalog::Config),
    Inventory(inventory::Config),
    Orders(orders::Config),
    Logistics(logistics::Config),
}

impl Config {
    /// Reads `subgraph`'s settings into `env`'s problems; `dev_keys` stand in
    /// for configured keys.
    pub fn read(subgraph: Subgraph, env: &mut Env, dev_keys: Option<KeyRing>) -> Self {
        match subgraph {
            Subgraph::Users => Config::Users(users::Config::read(env, dev_keys)),
            Subgraph::Catalog => Config::Catalog(catalog::Config::read(env, dev_keys)),
            Subgraph::Inventory => Config::Inventory(inventory::Config::read(env, dev_keys)),
            Subgraph::Orders => Config::Orders(orders::Config::read(env, dev_keys)),
            Subgraph::Logistics => Config::Logistics(logistics::Config::read(env, dev_keys)),
        }
    }

    /// `subgraph`'s settings from the process environment, every problem listed at once.
    pub fn from_env(subgraph: Subgraph) -> Result<Self, kit::config::ConfigError> {
        Ok(match subgraph {
            Subgraph::Users => Config::Users(users::Config::from_env()?),
            Subgraph::Catalog => Config::Catalog(catalog::Config::from_env()?),
            Subgraph::Inventory => Config::Inventory(inventory::Config::from_env()?),
            Subgraph::Orders => Config::Orders(orders::Config::from_env()?),
            Subgraph::Logistics => Config::Logistics(logistics::Config::from_env()?),
        })
    }

    /// Migrates and builds the subgraph (see each crate's `start`).
    pub async fn start(&self) -> anyhow::Result<Started> {
        match self {
            Config::Users(cfg) => users::start(cfg).await,
            Config::Catalog(cfg) => catalog::start(cfg).await,
            Config::Inventory(cfg) => inventory::start(cfg).await,
            Config::Orders(cfg) => orders::start(cfg).await,
            Config::Logistics(cfg) => logistics::start(cfg).await,
        }
    }
}

/// Where `subgraph`'s spans go (`OTEL_*`), named `grocery-<subgraph>` unless told.
pub fn tracing_config(env: &mut Env, subgraph: Subgraph) -> kit::telemetry::otel::Config {
    kit::telemetry::otel::Config::read(env, &format!("grocery-{}", subgraph.name()))
}

/// How long `serve` waits for the access cut-offs before it listens anyway
/// (access tokens are then answered `SERVICE_UNAVAILABLE` until they load).
const CUTOFF_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// `grocery serve <component>`: migrate, then serve until SIGTERM/Ctrl-C.
/// The gateway's `supergraph` and `persisted_only` flags win over its settings.
pub async fn serve(
    component: Component,
    supergraph: Option<PathBuf>,
    persisted_only: bool,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let name = match component.subgraph() {
        None => {
            let (mut config, feed, bus) = gateway_config(config_file.as_deref())?;
            if let Some(path) = supergraph {
                config.supergraph = gateway::config::Supergraph::File(path);
            }
            config.options.persisted.only |= persisted_only;
            let path = match &config.supergraph {
                gateway::config::Supergraph::File(path) => path.display().to_string(),
                gateway::config::Supergraph::Composed(_) => "composed".into(),
            };
            let started = gateway::start(config)?;
            if let (Some(table), Some(feed)) = (started.revocations.clone(), feed) {
                follow_then_wait(table, Feed::Remote(feed), &mut tasks, &stop).await?;
            }
            let cache = started.gateway.pipeline.entity_cache.clone();
            crate::entity_events::spawn(cache, &bus, false, &mut tasks, stop.clone()).await?;
            let listening = started.spawn(&mut tasks, stop).await?;
            if let Some(url) = listening.metrics {
                tracing::info!(%url, "gateway metrics listening");
            }
            if let Some(url) = listening.rest {
                tracing::info!(%url, "gateway REST routes listening");
            }
            tracing::info!(url = %listening.url, supergraph = %path, "gateway listening");
            "gateway"
        }
        Some(subgraph) => {
            let name = subgraph.name();
            anyhow::ensure!(
                config_file.is_none(),
                "--config is the gateway's; {name} reads the environment"
            );
            anyhow::ensure!(
                !persisted_only,
                "--persisted-only is the gateway's; {name} has none"
            );
            anyhow::ensure!(
                supergraph.is_none(),
                "--supergraph is the gateway's; {name} has none"
            );
            let config = Config::from_env(subgraph)?;
            let tracing = kit::config::from_env(|env| tracing_config(env, subgraph))?;
            let Started {
                revocations,
                cutoffs,
                rpc_addr,
                service,
            } = config.start().await?;
            if let Some(rpc) = rpc_addr {
                tracing::info!(component = name, %rpc, "stock API listening");
            }
            follow_then_wait(revocations, cutoffs, &mut tasks, &stop).await?;
            let url = service.traced(tracing).spawn(&mut tasks, stop).await?;
            tracing::info!(component = name, %url, "listening");
            name
        }
    };
    tokio::select! {
        () = crate::shutdown_signal() => {}
        Some(ended) = tasks.join_next() => {
            ended??;
            anyhow::bail!("{name} stopped unexpectedly");
        }
    }
    let _ = stop_tx.send(true);
    while let Some(ended) = tasks.join_next().await {
        ended??;
    }
    tracing::info!(component = name, "stopped");
    Ok(())
}

/// Fills `table` from `feed` in `tasks` and waits for it to load, at most
/// [`CUTOFF_PATIENCE`].
async fn follow_then_wait(
    table: Revocations,
    feed: Feed,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    feed.spawn(table.clone(), tasks, stop.clone()).await?;
    revocation_feed::primed(&[table], CUTOFF_PATIENCE).await;
    Ok(())
}

/// The supergraph of the committed subgraph SDLs in `dir`, each subgraph
/// reached at its default local URL (`http://127.0.0.1:<port>/graphql`),
/// and the gateway's own subgraph (`gateway.graphql`, answered in process).
pub fn supergraph(dir: &Path) -> anyhow::Result<String> {
    let read = |name: &str| {
        let path = dir.join(format!("{name}.graphql"));
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let mut subgraphs = Subgraph::ALL
        .iter()
        .map(|s| {
            Ok(gateway::SubgraphSource {
                name: s.name().to_owned(),
                url: format!("http://127.0.0.1:{}/graphql", s.default_port()),
                sdl: read(s.name())?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    subgraphs.push(gateway_subgraph(read(admin::NAME)?));
    Ok(gateway::compose(&subgraphs)?)
}

/// The gateway's own subgraph (partner usage and quotas) with `sdl`.
pub fn gateway_subgraph(sdl: String) -> gateway::SubgraphSource {
    gateway::SubgraphSource {
        name: admin::NAME.to_owned(),
        url: admin::URL.to_owned(),
        sdl,
    }
}

/// The federation SDL of `name`: a subgraph, or `gateway` (the gateway's own).
pub fn sdl_of(name: &str) -> anyhow::Result<String> {
    if name == admin::NAME {
        return Ok(admin::sdl());
    }
    Subgraph::from_str(name, false)
        .map(Subgraph::sdl)
        .map_err(|_| anyhow::anyhow!("{name:?} is not a subgraph (nor `gateway`)"))
}

/// `grocery compose`: writes `dir/supergraph.graphql`.
pub fn compose(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("supergraph.graphql");
    std::fs::write(&path, supergraph(dir)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name `serve` and `dev` read of `env`, whatever it holds.
    fn asked_by_every_reader(env: &mut Env) -> Vec<String> {
        for subgraph in Subgraph::ALL {
            Config::read(subgraph, env, None);
            Config::read(subgraph, env, Some(KeyRing::default()));
        }
        gateway::Config::read(env);
        gateway::Config::read_dev(env, KeyRing::default());
        crate::dev::Configured::read(env);
        env.asked()
    }

    #[test]
    fn every_variable_read_is_declared() {
        let mut unset = Env::from_fn(|_| None);
        let undeclared = kit::config::undeclared(&asked_by_every_reader(&mut unset), ENV);
        assert!(
            undeclared.is_empty(),
            "read but not declared in any crate's ENV (so missing from `grocery env` and README): \
             {undeclared:?}"
        );
        // Set variables can lead readers elsewhere (a private key's file, a JWKS URL).
        let mut set = Env::from_fn(|name| Some(format!("{}-value", name.to_lowercase())));
        let undeclared = kit::config::undeclared(&asked_by_every_reader(&mut set), ENV);
        assert!(undeclared.is_empty(), "{undeclared:?}");
    }

    #[test]
    fn every_variable_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for var in ENV.iter().flat_map(|rows| rows.iter()) {
            for name in var.names {
                assert!(seen.insert(*name), "{name} is declared twice");
            }
        }
    }

    #[test]
    fn the_registry_agrees_with_each_crate() {
        for subgraph in Subgraph::ALL {
            let name = subgraph.name();
            assert_eq!(Subgraph::from_str(name, false), Ok(subgraph));
            assert_eq!(
                Component::from_str(name, false).map(|c| c.subgraph()),
                Ok(Some(subgraph))
            );
        }
        let ports: Vec<_> = Subgraph::ALL.iter().map(|s| s.default_port()).collect();
        assert_eq!(ports, [4003, 4002, 4001, 4004, 4005]);
    }
}
