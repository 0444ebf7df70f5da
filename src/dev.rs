//! `grocery dev`: the whole stack in one process for a laptop.
//!
//! Uses `DATABASE_URL` when set, otherwise a private cluster under
//! `.grocery/pg`; development signing keys come from `.grocery/keys` unless
//! configured. Migrates every schema, seeds demo data, serves every component
//! on its port and stops all of it, PostgreSQL included, on Ctrl-C/SIGTERM,
//! also when the signal arrives during start-up.

use std::{path::PathBuf, time::Instant};

use anyhow::Context;
use clap::Args;
use kit::{
    auth::{
        KeyRing,
        revocation_feed::{self, Feed, LIST_PATH},
    },
    component::Started,
    config::{Env, Var},
};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    components::{self, Config, Subgraph},
    postgres::Cluster,
};

/// The variables only `dev` reads (besides every component's).
pub const ENV: &[Var] = &[
    Var {
        file: &[],
        names: &["GROCERY_HOME"],
        used_by: "`dev`",
        default: "`.grocery`",
        meaning: "folder of the private cluster and dev keys",
    },
    Var {
        file: &[],
        names: &["GROCERY_DEMO_PASSWORD"],
        used_by: "`dev`, `seed`",
        default: "required (`dev`: `grocery-demo`, none with `DATABASE_URL`)",
        meaning: "password of the demo accounts",
    },
    Var {
        file: &[],
        names: &["PG_BINDIR"],
        used_by: "`dev`",
        default: "newest `/usr/lib/postgresql/*/bin` or Homebrew `postgresql@*/bin`, else `PATH`",
        meaning: "where `initdb`/`pg_ctl` live (installed when missing everywhere)",
    },
];

/// Which addresses of other components were configured: `dev` points the
/// subgraphs at the ones it bound only where they were not.
pub struct Configured {
    inventory_rpc_url: bool,
    catalog_url: bool,
    users_url: bool,
}

impl Configured {
    /// Reads which of them are set.
    pub fn read(env: &Env) -> Self {
        Self {
            inventory_rpc_url: env.get("INVENTORY_RPC_URL").is_some(),
            catalog_url: env.get("CATALOG_URL").is_some(),
            users_url: env.get("USERS_URL").is_some(),
        }
    }
}

#[derive(Args)]
pub struct DevArgs {
    /// Folder for the private database, keys and state.
    #[arg(long, env = "GROCERY_HOME", default_value = ".grocery")]
    home: PathBuf,
    /// Password of the demo accounts `admin` and `truck-1` (default `grocery-demo`;
    /// required to seed them into an external DATABASE_URL).
    #[arg(long, env = "GROCERY_DEMO_PASSWORD", hide_env_values = true)]
    demo_password: Option<String>,
}

/// What `dev` has started; dropping it stops servers and PostgreSQL.
#[derive(Default)]
struct Stack {
    cluster: Option<Cluster>,
    servers: JoinSet<anyhow::Result<()>>,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut stack = Stack::default();
    let server_stop = stop.clone();
    tokio::select! {
        result = start(&args, &mut stack, server_stop, started) => result?,
        _ = stop.wait_for(|s| *s) => {
            println!("interrupted during start-up; stopping");
            return Ok(()); // `stack` drops here: servers aborted, PostgreSQL stopped
        }
    }
    let stopping = stop.clone();
    let outcome = tokio::select! {
        _ = stop.wait_for(|s| *s) => Ok(()),
        Some(result) = stack.servers.join_next() => match result {
            // Tasks end as soon as the stop signal reaches them, and that can
            // be seen here first (select order, cooperative budgeting).
            Ok(Ok(())) if *stopping.borrow() => Ok(()),
            Ok(Ok(())) => Err(anyhow::anyhow!("a task ended before shutdown")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.into()),
        },
    };
    println!("shutting down");
    // Servers were handed the same stop signal; let them drain.
    if outcome.is_err() {
        stack.servers.abort_all();
    }
    while stack.servers.join_next().await.is_some() {}
    if let Some(cluster) = &mut stack.cluster {
        cluster.stop();
    }
    outcome
}

async fn start(
    args: &DevArgs,
    stack: &mut Stack,
    stop: watch::Receiver<bool>,
    started: Instant,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.home)
        .with_context(|| format!("creating {}", args.home.display()))?;
    let external = std::env::var("DATABASE_URL").is_ok_and(|u| !u.trim().is_empty());
    let cluster_url = match external {
        true => {
            println!("using DATABASE_URL");
            None
        }
        false => Some(
            stack
                .cluster
                .insert(Cluster::start(&args.home).await?)
                .url
                .clone(),
        ),
    };
    // Components in one process share a service token made up for this run.
    let rpc_token = uuid::Uuid::new_v4().simple().to_string();
    let mut env = Env::from_fn(move |name| match (name, &cluster_url) {
        // Our private cluster stands in for DATABASE_URL; per-subgraph URLs still win.
        ("DATABASE_URL", Some(url)) => Some(url.clone()),
        ("INTERNAL_RPC_TOKEN", _) => std::env::var(name).ok().or_else(|| Some(rpc_token.clone())),
        _ => std::env::var(name).ok(),
    });
    let dev_keys = KeyRing::load_or_generate(&args.home.join("keys"))?;
    let mut configs: Vec<(Subgraph, Config, kit::telemetry::otel::Config)> = Subgraph::ALL
        .into_iter()
        .map(|s| {
            let config = Config::read(s, &mut env, Some(dev_keys.clone()));
            (s, config, components::tracing_config(&mut env, s))
        })
        .collect();
    let configured = Configured::read(&env);
    let mut edge_config = gateway::Config::read_dev(&mut env, dev_keys);
    let edge_feed = kit::auth::revocation_feed::FeedConfig::from_env(&mut env);
    let edge_bus = kit::events::BusConfig::from_env(&mut env);
    env.finish()?;

    // A well-known admin password must never land in a shared database by accident.
    let demo_password = match (&args.demo_password, external) {
        (Some(password), _) => Some(password.clone()),
        (None, false) => Some("grocery-demo".to_owned()),
        (None, true) => None,
    };
    let mut urls: Vec<(Subgraph, String)> = Vec::new();
    let mut stock_api = None;
    // Every component and the gateway keep their own cut-offs, filled as in
    // `serve`: users from its table, the others from its list once it listens.
    let mut cutoffs = Vec::new();
    for (subgraph, config, tracing) in &mut configs {
        let url_of = |wanted: Subgraph| {
            urls.iter()
                .find(|(s, _)| *s == wanted)
                .map(|(_, url)| format!("{url}/graphql"))
        };
        // Inventory starts first; catalog is pointed at the stock API it bound.
        if let (Config::Catalog(cfg), Some(rpc)) = (&mut *config, stock_api)
            && !configured.inventory_rpc_url
        {
            cfg.inventory_rpc_url = format!("http://{rpc}");
        }
        // Orders starts last: pointed at the stock API, catalog and users as bound.
        if let Config::Orders(cfg) = &mut *config {
            if let Some(rpc) = stock_api
                && !configured.inventory_rpc_url
            {
                cfg.inventory_rpc_url = format!("http://{rpc}");
            }
            if let Some(url) = url_of(Subgraph::Catalog)
                && !configured.catalog_url
            {
                cfg.catalog_url = url;
            }
            if let Some(url) = url_of(Subgraph::Users)
                && !configured.users_url
            {
                cfg.users_url = url;
            }
        }
        // Logistics restocks through the stock API as bound.
        if let (Config::Logistics(cfg), Some(rpc)) = (&mut *config, stock_api)
            && !configured.inventory_rpc_url
        {
            cfg.inventory_rpc_url = format!("http://{rpc}");
        }
        let Started {
            revocations,
            cutoffs: feed,
            rpc_addr,
            service,
        } = config.start().await?;
        cutoffs.push((revocations, feed));
        stock_api = stock_api.or(rpc_addr);
        let url = service
            .traced(tracing.clone())
            .spawn(&mut stack.servers, stop.clone())
            .await?;
        if let Some(password) = &demo_password {
            seed(config, password)
                .await
                .with_context(|| format!("seeding {}", subgraph.name()))?;
        }
        urls.push((*subgraph, url));
    }

    // The gateway fronts the subgraphs at the addresses they actually bound.
    let mut sources = urls
        .iter()
        .map(|(subgraph, url)| gateway::SubgraphSource {
            name: subgraph.name().to_owned(),
            url: format!("{url}/graphql"),
            sdl: subgraph.sdl(),
        })
        .collect::<Vec<_>>();
    sources.push(crate::components::gateway_subgraph(
        gateway::pipeline::usage::admin::sdl(),
    ));
    edge_config.supergraph = gateway::config::Supergraph::Composed(gateway::compose(&sources)?);
    let edge = gateway::start(edge_config)?;
    let cache = edge.gateway.pipeline.entity_cache.clone();
    crate::entity_events::spawn(cache, &edge_bus, true, &mut stack.servers, stop.clone()).await?;
    // `dev` always verifies at the edge, with the development keys.
    if let Some(table) = edge.revocations.clone() {
        cutoffs.push((table, Feed::Remote(edge_feed)));
    }
    let users_list = urls
        .iter()
        .find(|(s, _)| *s == Subgraph::Users)
        .map(|(_, url)| format!("{url}{LIST_PATH}"));
    let mut tables = Vec::new();
    for (table, mut feed) in cutoffs {
        if let (Feed::Remote(remote), Some(url)) = (&mut feed, &users_list) {
            remote.list_url = url.clone();
        }
        feed.spawn(table.clone(), &mut stack.servers, stop.clone())
            .await?;
        tables.push(table);
    }
    let listening = edge.spawn(&mut stack.servers, stop.clone()).await?;
    let gateway_url = listening.url;
    let metrics_url = listening.metrics;
    let rest_url = listening.rest;

    revocation_feed::primed(&tables, std::time::Duration::from_secs(30)).await;

    println!();
    println!(
        "grocery dev is ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {:<10} {gateway_url}/graphql   <- the API (GraphiQL in a browser)",
        "gateway"
    );
    for (subgraph, url) in &urls {
        println!("  {:<10} {url}/graphql", subgraph.name());
    }
    if let Some(url) = metrics_url {
        println!("  {:<10} {url}", "metrics");
    }
    if let Some(url) = rest_url {
        println!(
            "  {:<10} {url}/api   <- the Ordering API (REST; docs at /api/docs)",
            "rest"
        );
    }
    if let Some(rpc) = stock_api {
        println!(
            "  {:<10} {rpc} (gRPC stock API, service token required)",
            "stock-api"
        );
    }
    match demo_password {
        Some(_) => println!(
            "  demo: accounts admin (ADMIN) and truck-1 (TRUCK), password from GROCERY_DEMO_PASSWORD; \
             products APPLE, BANANA, MILK, EGGS, BREAD, …"
        ),
        None => println!(
            "  no demo data seeded into DATABASE_URL: set GROCERY_DEMO_PASSWORD to seed it"
        ),
    }
    println!("  Ctrl-C stops everything");
    println!();
    Ok(())
}

/// Demo data of one component (idempotent).
async fn seed(config: &Config, password: &str) -> anyhow::Result<()> {
    let (component, db, stock_api) = match config {
        Config::Users(cfg) => (Subgraph::Users, &cfg.db, None),
        Config::Inventory(cfg) => (Subgraph::Inventory, &cfg.db, None),
        Config::Catalog(cfg) => (
            Subgraph::Catalog,
            &cfg.db,
            Some(crate::seed::StockApi {
                url: cfg.inventory_rpc_url.clone(),
                token: cfg.rpc_token.clone(),
            }),
        ),
        Config::Orders(_) | Config::Logistics(_) => return Ok(()),
    };
    crate::seed::demo(component, db, stock_api.as_ref(), password).await
}
