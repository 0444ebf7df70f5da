//! Installing the PostgreSQL server binaries when `grocery dev` finds none:
//! with apt-get on Debian and Ubuntu (as root, or through sudo), with
//! Homebrew on macOS. Each command is printed before it runs. Where none can
//! run (no package manager we know, no rights), or one fails, the error is
//! the one command to run by hand.

use std::path::{Path, PathBuf};

/// The Homebrew formula: Homebrew keeps no unversioned `postgresql`.
pub const BREW_FORMULA: &str = "postgresql@17";

/// What the machine offers for installing packages.
#[derive(Clone, Copy, Debug, Default)]
pub struct System {
    pub macos: bool,
    pub root: bool,
    pub apt_get: bool,
    pub sudo: bool,
    pub brew: bool,
}

impl System {
    /// This machine, as this process sees it (`PATH`, effective user).
    pub fn detect() -> Self {
        Self {
            macos: cfg!(target_os = "macos"),
            root: super::is_root(),
            apt_get: on_path("apt-get").is_some(),
            sudo: on_path("sudo").is_some(),
            brew: on_path("brew").is_some(),
        }
    }
}

/// How the server binaries get installed here.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// These commands, in order.
    Run(Vec<Vec<String>>),
    /// Nothing we may run (why): this command, for the person at the keyboard.
    ByHand { command: String, why: &'static str },
}

fn command(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The plan for `system`.
pub fn plan(system: System) -> Plan {
    if system.macos {
        let by_hand = |why| Plan::ByHand {
            command: format!("brew install {BREW_FORMULA}"),
            why,
        };
        return match (system.brew, system.root) {
            (true, false) => Plan::Run(vec![command(&["brew", "install", BREW_FORMULA])]),
            (true, true) => by_hand("Homebrew does not run as root"),
            (false, _) => by_hand("Homebrew (https://brew.sh) is not installed"),
        };
    }
    // `update` first: a fresh machine or container has no package lists yet.
    let apt = |prefix: &[&str]| {
        Plan::Run(vec![
            command(&[prefix, &["apt-get", "update"]].concat()),
            command(&[prefix, &["apt-get", "install", "-y", "postgresql"]].concat()),
        ])
    };
    match (system.apt_get, system.root, system.sudo) {
        (true, true, _) => apt(&[]),
        (true, false, true) => apt(&["sudo"]),
        (true, false, false) => Plan::ByHand {
            command: "sudo apt-get install postgresql".into(),
            why: "installing needs root, and there is no sudo",
        },
        // Another distribution: its package manager, its package name.
        (false, _, _) => Plan::ByHand {
            command: "your package manager's PostgreSQL server package (initdb, pg_ctl)".into(),
            why: "there is no apt-get (Debian, Ubuntu) or Homebrew (macOS) here",
        },
    }
}

/// What to say when the binaries cannot be installed here, and `why`: the
/// command to run by hand.
fn by_hand(command: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found, and grocery cannot \
         install them: {why}.\n\
         Install them:  {command}\n\
         or point grocery at an existing server with DATABASE_URL=postgres://…,\n\
         or at the binaries with PG_BINDIR=/path/to/bin"
    )
}

/// Installs the server binaries as [`plan`] says for this machine, printing
/// each command first; an error that names the command to run by hand when
/// it cannot.
pub async fn server_binaries() -> anyhow::Result<()> {
    let commands = match plan(System::detect()) {
        Plan::Run(commands) => commands,
        Plan::ByHand { command, why } => return Err(by_hand(&command, why)),
    };
    println!("PostgreSQL server binaries (initdb, pg_ctl) were not found; installing them:");
    let install = commands.last().expect("a command").join(" ");
    for words in &commands {
        let line = words.join(" ");
        println!("  $ {line}");
        // The package manager talks to the terminal: progress, sudo's password prompt.
        let status = tokio::process::Command::new(&words[0])
            .args(&words[1..])
            .status()
            .await;
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => return Err(by_hand(&install, &format!("`{line}` failed ({status})"))),
            Err(err) => {
                return Err(by_hand(
                    &install,
                    &format!("`{line}` could not run ({err})"),
                ));
            }
        }
    }
    Ok(())
}

/// Where `program` is on `PATH`, if it is there and executable.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::{BREW_FORMULA, Plan, System, plan};

    fn run(commands: &[&str]) -> Plan {
        Plan::Run(
            commands
                .iter()
                .map(|c| c.split(' ').map(str::to_owned).collect())
                .collect(),
        )
    }

    /// The command a plan leaves to the person at the keyboard.
    fn by_hand(plan: Plan) -> String {
        match plan {
            Plan::ByHand { command, .. } => command,
            other => panic!("{other:?} runs something"),
        }
    }

    #[test]
    fn debian_installs_with_apt_get_as_root_or_through_sudo() {
        let debian = System {
            apt_get: true,
            ..System::default()
        };
        assert_eq!(
            plan(System {
                root: true,
                ..debian
            }),
            run(&["apt-get update", "apt-get install -y postgresql"])
        );
        assert_eq!(
            plan(System {
                sudo: true,
                ..debian
            }),
            run(&["sudo apt-get update", "sudo apt-get install -y postgresql"])
        );
        assert_eq!(by_hand(plan(debian)), "sudo apt-get install postgresql");
    }

    #[test]
    fn macos_installs_with_homebrew_but_never_as_root() {
        let mac = System {
            macos: true,
            brew: true,
            ..System::default()
        };
        assert_eq!(plan(mac), run(&[&format!("brew install {BREW_FORMULA}")]));
        for without_rights in [System { root: true, ..mac }, System { brew: false, ..mac }] {
            assert_eq!(
                by_hand(plan(without_rights)),
                format!("brew install {BREW_FORMULA}")
            );
        }
    }

    #[test]
    fn without_a_known_package_manager_nothing_runs() {
        let other = System {
            root: true,
            sudo: true,
            ..System::default()
        };
        assert!(matches!(plan(other), Plan::ByHand { .. }));
    }
}
