//! `grocery dev`: the whole stack in one process for a laptop.
//!
//! Uses `DATABASE_URL` when set, otherwise a private cluster under
//! `.grocery/pg`; development signing keys come from `.grocery/keys` unless
//! configured. Migrates every schema, seeds demo data, serves every component
//! on its port and stops all of it, PostgreSQL included, on Ctrl-C/SIGTERM.

use std::{path::PathBuf, time::Instant};

use anyhow::Context;
use clap::Args;
use kit::{auth::KeyRing, config::Env};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{
    components::{self, Component},
    postgres::Cluster,
};

#[derive(Args)]
pub struct DevArgs {
    /// Folder for the private database, keys and state.
    #[arg(long, env = "GROCERY_HOME", default_value = ".grocery")]
    home: PathBuf,
    /// Password of the demo accounts `admin` and `truck-1`.
    #[arg(
        long,
        env = "GROCERY_DEMO_PASSWORD",
        default_value = "grocery-demo",
        hide_env_values = true
    )]
    demo_password: String,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.home)
        .with_context(|| format!("creating {}", args.home.display()))?;
    let cluster = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            println!("using DATABASE_URL ({})", kit::db::redact(&url));
            None
        }
        _ => Some(Cluster::start(&args.home).await?),
    };
    let result = run_stack(&args, cluster.as_ref().map(|c| c.url.clone()), started).await;
    if let Some(cluster) = &cluster {
        cluster.stop();
    }
    result
}

async fn run_stack(
    args: &DevArgs,
    cluster_url: Option<String>,
    started: Instant,
) -> anyhow::Result<()> {
    let mut env = match cluster_url {
        // Our private cluster stands in for DATABASE_URL; per-subgraph URLs still win.
        Some(url) => Env::from_fn(move |name| match name {
            "DATABASE_URL" => Some(url.clone()),
            other => std::env::var(other).ok(),
        }),
        None => Env::new(),
    };
    let dev_keys = KeyRing::load_or_generate(&args.home.join("keys"))?;
    let users_cfg = users::UsersConfig::from_env(&mut env, Some(dev_keys));
    let users_addr = components::listen_addr(&mut env, Component::Users);
    env.finish()?;

    // Each router migrates its schema before it is built; seed after that.
    let users_router = users::router(&users_cfg).await?;
    users::seed_demo(&users_cfg.db, &args.demo_password).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = JoinSet::new();
    let users_url = spawn_server(
        &mut servers,
        Component::Users,
        users_addr,
        users_router,
        stop_rx.clone(),
    )
    .await?;

    println!();
    println!(
        "grocery dev is ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("  users    {users_url}/graphql   (JWKS: {users_url}/.well-known/jwks.json)");
    println!(
        "  demo accounts: admin (ADMIN), truck-1 (TRUCK); password from GROCERY_DEMO_PASSWORD"
    );
    println!("  Ctrl-C stops everything");
    println!();

    let outcome = tokio::select! {
        () = crate::shutdown_signal() => Ok(()),
        Some(result) = servers.join_next() => match result {
            Ok(Ok(())) => Err(anyhow::anyhow!("a server stopped unexpectedly")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.into()),
        },
    };
    println!("shutting down");
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    outcome
}

async fn spawn_server(
    servers: &mut JoinSet<anyhow::Result<()>>,
    component: Component,
    addr: std::net::SocketAddr,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!(
            "{} cannot listen on {addr} (set {}_PORT)",
            component.name(),
            component.name().to_uppercase()
        )
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    servers.spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        kit::server::serve(listener, router, shutdown).await?;
        Ok(())
    });
    Ok(url)
}
