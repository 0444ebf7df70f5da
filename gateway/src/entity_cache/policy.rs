//! What a subgraph's `Cache-Control` says about its answer: how long it
//! may be kept and for whom. async-graphql writes the header from the
//! hints of the fields it resolved (`max-age` the least of them, `private`
//! if any field is); no header, `no-store`, `no-cache` or `max-age=0`
//! keep nothing.

use std::time::Duration;

/// Who may be served a cached answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Anyone.
    Public,
    /// Only the user whose request fetched it.
    Private,
}

/// A cacheable answer's lifetime and scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub max_age: Duration,
    pub scope: Scope,
}

/// The policy of a `Cache-Control` value; `None`: keep nothing. A
/// directive this reader does not know keeps nothing either (a
/// misunderstood header must never serve data longer than meant).
pub fn parse(header: Option<&[u8]>) -> Option<Policy> {
    let text = std::str::from_utf8(header?).ok()?;
    let mut max_age = None;
    let mut scope = Scope::Public;
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("max-age" | "s-maxage", Some(seconds)) => {
                let seconds: u64 = seconds.parse().ok()?;
                max_age = Some(max_age.map_or(seconds, |m: u64| m.min(seconds)));
            }
            ("private", None) => scope = Scope::Private,
            ("public", None) => {}
            _ => return None,
        }
    }
    match max_age? {
        0 => None,
        seconds => Some(Policy {
            max_age: Duration::from_secs(seconds),
            scope,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Policy> {
        parse(Some(s.as_bytes()))
    }

    #[test]
    fn reads_what_async_graphql_writes() {
        assert_eq!(
            p("max-age=60"),
            Some(Policy {
                max_age: Duration::from_secs(60),
                scope: Scope::Public
            })
        );
        assert_eq!(
            p("max-age=30, private"),
            Some(Policy {
                max_age: Duration::from_secs(30),
                scope: Scope::Private
            })
        );
        assert_eq!(p("private"), None);
        assert_eq!(p("no-cache"), None);
        assert_eq!(p("no-store, max-age=60"), None);
        assert_eq!(p("max-age=0"), None);
        assert_eq!(parse(None), None);
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert_eq!(p("max-age=-1"), None);
        assert_eq!(p("max-age=abc"), None);
        assert_eq!(p("max-age=99999999999999999999999"), None);
        assert_eq!(p("immutable, max-age=5"), None);
        assert_eq!(parse(Some(b"max-age=\xff")), None);
        assert_eq!(
            p("max-age=60, s-maxage=5").map(|p| p.max_age),
            Some(Duration::from_secs(5))
        );
    }
}
