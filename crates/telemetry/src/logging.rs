//! Logging set-up: `tracing` with JSON lines by default (`LOG_FORMAT=pretty`
//! for humans) and `RUST_LOG` filtering (default `info`), once per process
//! (the launcher calls it for every component it runs).

use tracing_subscriber::{EnvFilter, fmt};

/// The variables [`init`] reads.
pub const ENV: &[settings::Var] = &[
    settings::Var {
        file: &[],
        names: &["LOG_FORMAT"],
        used_by: "all",
        default: "`json` (`dev`, `migrate`: `pretty`)",
        meaning: "log format",
    },
    settings::Var {
        file: &[],
        names: &["RUST_LOG"],
        used_by: "all",
        default: "`info`",
        meaning: "log filter",
    },
];

/// Installs the global subscriber; `pretty_by_default` picks the format when `LOG_FORMAT` is unset.
pub fn init(pretty_by_default: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => false,
        Ok("pretty") => true,
        _ => pretty_by_default,
    };
    let builder = fmt().with_env_filter(filter).with_target(false);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = if pretty {
        builder.compact().try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    };
}
