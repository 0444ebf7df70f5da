//! Typed settings from the environment, shared by every component of
//! grocery (the subgraphs through `kit::config`, the gateway directly).
//!
//! Readers record every problem instead of stopping at the first, so a
//! misconfigured deployment is told everything that is wrong in one error:
//!
//! ```
//! use settings::Env;
//!
//! let mut env = Env::from_fn(|name| (name == "PORT").then(|| "80a".to_owned()));
//! let port: u16 = env.parse_or("PORT", 4001);
//! let url = env.required("DATABASE_URL");
//! let err = env.finish().unwrap_err();
//! assert_eq!((port, url.as_str(), err.0.len()), (4001, "", 2));
//! ```
//!
//! Every variable is declared once, beside the code that reads it, as a
//! [`Var`] row (name, who reads it, default, meaning); the launcher joins
//! every crate's rows into the table `grocery env` prints and README shows,
//! and checks that each name a reader asked for is declared ([`undeclared`]).
//! [`listen::addr`] reads a component's listen address, the one setting
//! every component has.

mod declared;
pub mod listen;

use std::{cell::RefCell, collections::BTreeSet, fmt, str::FromStr};

pub use declared::{Key, Kind, Var, key, markdown, undeclared};

/// Where values come from when not from the process environment.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send>;

/// Collects values and problems while reading environment variables.
#[derive(Default)]
pub struct Env {
    problems: Vec<String>,
    lookup: Option<Lookup>,
    /// Every name asked for, for the check that each one is declared.
    asked: RefCell<BTreeSet<String>>,
}

/// Every missing or invalid variable, listed.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Runs `read` over the process environment: what it read, or every
/// problem it met (a component's `Config::from_env`).
pub fn from_env<T>(read: impl FnOnce(&mut Env) -> T) -> Result<T, ConfigError> {
    let mut env = Env::new();
    let value = read(&mut env);
    env.finish().map(|()| value)
}

impl Env {
    /// Reads the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads from a map instead of the process environment (tests).
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + 'static) -> Self {
        Self {
            lookup: Some(Box::new(lookup)),
            ..Self::default()
        }
    }

    /// The raw value, with empty strings treated as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        let value = match &self.lookup {
            Some(lookup) => lookup(name),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// A value that must be present.
    pub fn required(&mut self, name: &str) -> String {
        self.get(name).unwrap_or_else(|| {
            self.problems
                .push(format!("{name} is required but not set"));
            String::new()
        })
    }

    /// A parsed value, or `default` when unset.
    pub fn parse_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.parse(name).unwrap_or(default)
    }

    /// A parsed value when set.
    pub fn parse<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let raw = self.get(name)?;
        match raw.trim().parse() {
            Ok(value) => Some(value),
            Err(err) => {
                self.problems
                    .push(format!("{name}={raw:?} is not valid: {err}"));
                None
            }
        }
    }

    /// Records a problem found by the caller's own checks.
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Every variable this reader was asked for so far, in name order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.borrow().iter().cloned().collect()
    }

    /// `Ok` when nothing was missing or invalid. A problem met by several
    /// readers of one variable (components of one process) is listed once.
    pub fn finish(mut self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        self.problems.retain(|p| seen.insert(p.clone()));
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_problem_at_once() {
        let mut env = Env::from_fn(|name| match name {
            "PORT" => Some("eighty".into()),
            "BLANK" => Some("  ".into()),
            _ => None,
        });
        let port: u16 = env.parse_or("PORT", 1);
        let _ = env.required("DATABASE_URL");
        let _ = env.required("BLANK");
        assert_eq!(port, 1);
        let err = env.finish().unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(err.0[0].contains("PORT=\"eighty\""));
        assert!(err.0[1].contains("DATABASE_URL is required"));
        assert!(err.0[2].contains("BLANK is required"));
    }

    #[test]
    fn parses_present_values() {
        let mut env = Env::from_fn(|_| Some(" 4001 ".into()));
        assert_eq!(env.parse_or::<u16>("PORT", 1), 4001);
        assert!(env.finish().is_ok());
    }

    #[test]
    fn remembers_every_name_asked_for_set_or_not() {
        let mut env = Env::from_fn(|name| (name == "SET").then(|| "1".into()));
        let _ = env.get("UNSET");
        let _: Option<u8> = env.parse("SET");
        let _ = env.required("UNSET");
        assert_eq!(env.asked(), ["SET", "UNSET"]);
    }
}
