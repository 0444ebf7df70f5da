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
use kit::{auth::KeyRing, config::Env};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    components::{self, Component, Config},
    postgres::Cluster,
};

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
    let mut configs = Vec::new();
    for component in Component::ALL {
        let addr = components::listen_addr(&mut env, component);
        configs.push((
            addr,
            Config::read(component, &mut env, Some(dev_keys.clone())),
        ));
    }
    let explicit_inventory_url = env.get("INVENTORY_RPC_URL").is_some();
    let explicit_catalog_url = env.get("CATALOG_URL").is_some();
    let explicit_users_url = env.get("USERS_URL").is_some();
    let gateway_addr = components::gateway_addr(&mut env);
    let gateway_serving = components::gateway_serving(&mut env);
    let mut tokens = kit::auth::TokenSettings::from_env(&mut env);
    let gateway_cutoffs = kit::auth::Revocations::new();
    tokens.revocations = Some(gateway_cutoffs.clone());
    // Every component and the gateway keep their own cut-offs, filled as in
    // `serve`: users from its table, the others from its list once it listens.
    let mut feed = kit::auth::revocation_feed::FeedConfig::from_env(&mut env);
    let (persisted, rate_limits) = components::edge_options(&mut env, false);
    let csrf = components::csrf_policy(&mut env);
    let metrics_addr = components::metrics_addr(&mut env);
    let max_errors = components::max_errors(&mut env);
    env.finish()?;

    // A well-known admin password must never land in a shared database by accident.
    let demo_password = match (&args.demo_password, external) {
        (Some(password), _) => Some(password.clone()),
        (None, false) => Some("grocery-demo".to_owned()),
        (None, true) => None,
    };
    let mut urls = Vec::new();
    let mut stock_api = None;
    let mut users_access = None;
    for (addr, config) in &mut configs {
        // Inventory starts first; catalog is pointed at the stock API it bound.
        if let (Config::Catalog(cfg), Some(rpc)) = (&mut *config, stock_api)
            && !explicit_inventory_url
        {
            cfg.inventory_rpc_url = format!("http://{rpc}");
        }
        // Orders starts last: pointed at the stock API, catalog and users as bound.
        if let Config::Orders(cfg) = &mut *config {
            if let Some(rpc) = stock_api
                && !explicit_inventory_url
            {
                cfg.inventory_rpc_url = format!("http://{rpc}");
            }
            if let Some((_, url)) = urls.iter().find(|(c, _)| *c == Component::Catalog)
                && !explicit_catalog_url
            {
                cfg.catalog_url = format!("{url}/graphql");
            }
            if let Some((_, url)) = urls.iter().find(|(c, _)| *c == Component::Users)
                && !explicit_users_url
            {
                cfg.users_url = format!("{url}/graphql");
            }
        }
        // Logistics restocks through the stock API as bound.
        if let (Config::Logistics(cfg), Some(rpc)) = (&mut *config, stock_api)
            && !explicit_inventory_url
        {
            cfg.inventory_rpc_url = format!("http://{rpc}");
        }
        let mut component = components::start(config).await?;
        let name = component.component;
        users_access = users_access.or(component.access_changes.take());
        stock_api = stock_api.or(component.rpc_addr);
        let url = component
            .spawn(*addr, &mut stack.servers, stop.clone())
            .await?;
        if let Some(password) = &demo_password {
            seed(config, password)
                .await
                .with_context(|| format!("seeding {}", name.name()))?;
        }
        urls.push((name, url));
    }

    if let Some((_, url)) = urls.iter().find(|(c, _)| *c == Component::Users) {
        feed.list_url = format!("{url}{}", kit::auth::revocation_feed::LIST_PATH);
    }
    let mut tables = vec![gateway_cutoffs.clone()];
    for (_, config) in &configs {
        let local = match config {
            Config::Users(_) => users_access.take(),
            _ => None,
        };
        let source = match local {
            Some(local) => components::CutoffFeed::Local(Box::new(local)),
            None => components::CutoffFeed::Remote(feed.clone()),
        };
        components::follow_cutoffs(
            config.revocations(),
            source,
            &mut stack.servers,
            stop.clone(),
        )
        .await?;
        tables.push(config.revocations());
    }
    components::follow_cutoffs(
        gateway_cutoffs,
        components::CutoffFeed::Remote(feed),
        &mut stack.servers,
        stop.clone(),
    )
    .await?;

    // The gateway fronts the subgraphs at the addresses they actually bound.
    let sources = urls
        .iter()
        .map(|(component, url)| gateway::SubgraphSource {
            name: component.name().to_owned(),
            url: format!("{url}/graphql"),
            sdl: component.sdl(),
        })
        .collect::<Vec<_>>();
    let supergraph = gateway::compose(&sources)?;
    let verifier = std::sync::Arc::new(gateway::pipeline::auth::EdgeAuth::Keys(
        std::sync::Arc::new(kit::auth::Verifier::new(&dev_keys, &tokens)?),
    ));
    let edge = std::sync::Arc::new(gateway::Gateway::new(
        &supergraph,
        Some(verifier),
        &gateway::GatewayOptions {
            subgraph_timeout: components::SUBGRAPH_TIMEOUT,
            introspection: true,
            graphiql: true,
            max_errors,
            // On a laptop the API's port may serve them too, unless given a port of their own.
            metrics_on_api: metrics_addr.is_none(),
            csrf,
            // Any localhost origin, so a frontend dev server can call the API.
            cors: gateway::server::cors::CorsPolicy::parse("localhost", false),
            persisted,
            rate_limits,
            ..Default::default()
        },
    )?);
    // Manifest edits apply without a restart; the watcher ends with the process.
    tokio::spawn(gateway::pipeline::persisted::watch(
        edge.pipeline.documents.clone(),
        std::time::Duration::from_secs(1),
    ));
    let metrics_url = match metrics_addr {
        Some(addr) => Some(
            components::spawn_metrics(edge.clone(), addr, &mut stack.servers, stop.clone()).await?,
        ),
        None => None,
    };
    let gateway_url = components::spawn_gateway(
        edge,
        gateway_addr,
        gateway_serving,
        &mut stack.servers,
        stop.clone(),
    )
    .await?;

    components::await_cutoffs(&tables, std::time::Duration::from_secs(30)).await;

    println!();
    println!(
        "grocery dev is ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {:<10} {gateway_url}/graphql   <- the API (GraphiQL in a browser)",
        "gateway"
    );
    for (component, url) in &urls {
        println!("  {:<10} {url}/graphql", component.name());
    }
    if let Some(url) = metrics_url {
        println!("  {:<10} {url}", "metrics");
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
        Config::Users(cfg) => (Component::Users, &cfg.db, None),
        Config::Inventory(cfg) => (Component::Inventory, &cfg.db, None),
        Config::Catalog(cfg) => (
            Component::Catalog,
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
