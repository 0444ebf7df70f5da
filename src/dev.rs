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
    let outcome = tokio::select! {
        // Servers end as soon as the stop signal reaches them: look at the
        // signal first, or a clean stop would read as a server failing.
        biased;
        _ = stop.wait_for(|s| *s) => Ok(()),
        Some(result) = stack.servers.join_next() => match result {
            Ok(Ok(())) => Err(anyhow::anyhow!("a server stopped unexpectedly")),
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
    let mut env = if external {
        println!("using DATABASE_URL");
        Env::new()
    } else {
        let cluster = stack.cluster.insert(Cluster::start(&args.home).await?);
        let url = cluster.url.clone();
        // Our private cluster stands in for DATABASE_URL; per-subgraph URLs still win.
        Env::from_fn(move |name| match name {
            "DATABASE_URL" => Some(url.clone()),
            other => std::env::var(other).ok(),
        })
    };
    let dev_keys = KeyRing::load_or_generate(&args.home.join("keys"))?;
    let users_cfg = users::UsersConfig::from_env(&mut env, Some(dev_keys));
    let users_addr = components::listen_addr(&mut env, Component::Users);
    env.finish()?;

    // Each router migrates its schema before it is built; seed after that.
    let users_router = users::router(&users_cfg).await?;
    // A well-known admin password must never land in a shared database by accident.
    let demo_password = match (&args.demo_password, external) {
        (Some(password), _) => Some(password.clone()),
        (None, false) => Some("grocery-demo".to_owned()),
        (None, true) => None,
    };
    match &demo_password {
        Some(password) => users::seed_demo(&users_cfg.db, password).await?,
        None => println!(
            "not seeding demo accounts into DATABASE_URL: set GROCERY_DEMO_PASSWORD to do so"
        ),
    }

    let users_url = spawn_server(
        &mut stack.servers,
        Component::Users,
        users_addr,
        users_router,
        stop,
    )
    .await?;

    println!();
    println!(
        "grocery dev is ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("  users    {users_url}/graphql   (JWKS: {users_url}/.well-known/jwks.json)");
    if demo_password.is_some() {
        println!(
            "  demo accounts: admin (ADMIN), truck-1 (TRUCK); password from GROCERY_DEMO_PASSWORD"
        );
    }
    println!("  Ctrl-C stops everything");
    println!();
    Ok(())
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
