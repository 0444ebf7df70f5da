//! `grocery`: one binary, many roles. `dev` runs the whole stack on a laptop;
//! `serve <component>` runs one component (a container's entrypoint);
//! `migrate`, `seed`, `keygen`, `compose`, `sdl`, `env`, `config-schema` and `config-check` are the
//! tools around them.

mod components;
mod dev;
mod entity_events;
mod migrations;
mod postgres;
mod seed;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::components::Subgraph;

/// mimalloc: the gateway builds and drops a JSON tree per request on every
/// worker thread, and glibc's malloc spends much of that time in contention
/// and consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "grocery",
    version,
    about = "Federated GraphQL commerce backend for an automated grocery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole stack locally: a private PostgreSQL under .grocery/ (unless
    /// DATABASE_URL is set), migrations, demo data and every component.
    Dev(dev::DevArgs),
    /// Run one component (reads its configuration from the environment; the
    /// gateway also from a file, `--config`).
    #[command(
        after_help = "Configuration comes from the environment, and every missing or invalid \
variable is reported at once. `grocery env` lists every variable: who reads it, its default \
and what it does. The gateway also reads a YAML file (`--config`), each key standing for a \
variable, which wins over it."
    )]
    Serve {
        /// Which component to run.
        component: components::Component,
        /// The gateway's supergraph file, watched and reloaded when it changes
        /// (default `SUPERGRAPH_PATH`, else schema/supergraph.graphql).
        #[arg(long, value_name = "PATH")]
        supergraph: Option<std::path::PathBuf>,
        /// Gateway: run only documents of the trusted-document manifests
        /// (as `PERSISTED_ONLY=true`).
        #[arg(long)]
        persisted_only: bool,
        /// Gateway: a YAML configuration file (keys in `grocery env`, schema
        /// in schema/gateway.config.schema.json); environment variables win over it.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Run database migrations for one subgraph, or all of them.
    Migrate {
        /// Only this subgraph (default: all).
        component: Option<Subgraph>,
        /// Apply nothing: wait until the migrations have been applied (by
        /// another `grocery migrate`), e.g. in an init container.
        #[arg(long)]
        wait: bool,
    },
    /// Seed the demo data `dev` seeds (accounts and products) into the configured
    /// databases; needs GROCERY_DEMO_PASSWORD and inventory's stock API.
    Seed,
    /// Create a JWT signing key (`DIR/signing.pem`) unless one exists, and print its public half.
    Keygen {
        /// Folder for the key.
        #[arg(long, default_value = ".grocery/keys")]
        dir: std::path::PathBuf,
    },
    /// Compose `schema/<subgraph>.graphql` into `schema/supergraph.graphql`.
    Compose {
        /// Folder holding the subgraph SDLs; the supergraph is written there.
        #[arg(long, default_value = "schema")]
        dir: std::path::PathBuf,
    },
    /// Print a subgraph's federation SDL (what `schema/<name>.graphql` holds).
    Sdl {
        /// The subgraph, or `gateway` (the gateway's own: partner usage and quotas).
        subgraph: String,
    },
    /// Print every environment variable as README's configuration table
    /// (Markdown): who reads it, its default and what it does.
    Env,
    /// Print the JSON Schema of the gateway's configuration file
    /// (what schema/gateway.config.schema.json holds).
    ConfigSchema,
    /// Check a gateway configuration file against the keys it may hold (keys,
    /// types and values; files and addresses it names are checked at start).
    ConfigCheck {
        /// The YAML file.
        file: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    kit::alloc::give_pages_back_late();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => {
            kit::telemetry::init(true);
            dev::run(args).await
        }
        Command::Serve {
            component,
            supergraph,
            persisted_only,
            config,
        } => {
            kit::telemetry::init(false);
            components::serve(component, supergraph, persisted_only, config).await
        }
        Command::Migrate { component, wait } => {
            kit::telemetry::init(true);
            migrations::run(component, wait).await
        }
        Command::Seed => {
            kit::telemetry::init(true);
            seed::run().await
        }
        Command::Keygen { dir } => keygen(&dir),
        Command::Compose { dir } => {
            components::compose(&dir).map(|path| println!("wrote {}", path.display()))
        }
        Command::Sdl { subgraph } => components::sdl_of(&subgraph).map(|sdl| print!("{sdl}")),
        Command::Env => {
            print!("{}", components::env_table());
            Ok(())
        }
        Command::ConfigSchema => {
            print!("{}", gateway::config::json_schema(components::ENV));
            Ok(())
        }
        Command::ConfigCheck { file } => components::check_gateway_config(&file)
            .map(|()| println!("{}: every key known, every value valid", file.display()))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(dir: &std::path::Path) -> anyhow::Result<()> {
    let ring = kit::auth::KeyRing::load_or_generate(dir)?;
    let key = ring
        .signing_key()
        .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
    println!(
        "signing key {} (kid {})",
        dir.join("signing.pem").display(),
        key.kid
    );
    print!("{}", key.public_pem()?);
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
