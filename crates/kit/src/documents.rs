//! Parsed documents kept by their text: the gateway sends a subgraph the
//! same few query texts over and over (one per plan), and async-graphql
//! would parse each request's text anew (pest, its parser and stacker were
//! 2.6 % of all CPU samples in the checkout bench, about 7 % of ours).
//!
//! A document enters only once async-graphql's own parser accepted it, and
//! a cached one is checked like a parsed one (depth and directive limits,
//! validation: those run on every request). The map holds at most
//! [`ENTRIES`] documents of at most [`MAX_TEXT`] bytes each; when it is full
//! it starts over, so text sent once (a hostile stream of unique queries)
//! costs what it cost without the cache.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_graphql::{Request, parser::types::ExecutableDocument};

/// Documents kept at most.
pub const ENTRIES: usize = 512;
/// Longest query text kept, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;

/// Parsed documents by query text.
#[derive(Default)]
pub struct Documents {
    parsed: Mutex<HashMap<Arc<str>, Arc<ExecutableDocument>>>,
}

impl Documents {
    fn map(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<ExecutableDocument>>> {
        // Every update leaves the map whole: a panic elsewhere cannot poison it.
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `request` its parsed document: a copy of the one kept for its
    /// text, or the one async-graphql parses now (kept for next time). A
    /// text that does not parse is left for execution to refuse as usual.
    pub fn prepare(&self, request: &mut Request) {
        if request.query.len() > MAX_TEXT {
            return;
        }
        // The copy is made after the lock is released.
        let kept = self.map().get(request.query.as_str()).cloned();
        if let Some(doc) = kept {
            request.set_parsed_query(ExecutableDocument::clone(&doc));
            return;
        }
        let Ok(doc) = request.parsed_query() else {
            return;
        };
        let doc = Arc::new(doc.clone());
        let mut parsed = self.map();
        if parsed.len() >= ENTRIES {
            parsed.clear();
        }
        parsed.insert(Arc::from(request.query.as_str()), doc);
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Request {
        Request::new(query)
    }

    #[test]
    fn a_text_is_parsed_once_and_answered_from_the_copy_after() {
        let docs = Documents::default();
        let mut first = request("{ a b }");
        docs.prepare(&mut first);
        assert_eq!(docs.len(), 1);
        let mut second = request("{ a b }");
        docs.prepare(&mut second);
        assert_eq!(docs.len(), 1);
        let fields = |r: &mut Request| format!("{:?}", r.parsed_query().unwrap().operations);
        assert_eq!(fields(&mut first), fields(&mut second));
    }

    #[test]
    fn bad_long_and_many_texts_stay_bounded() {
        let docs = Documents::default();
        docs.prepare(&mut request("{ a "));
        assert!(docs.is_empty(), "a text that does not parse is not kept");
        let long = format!("{{ {} }}", "a ".repeat(MAX_TEXT));
        docs.prepare(&mut request(&long));
        assert!(docs.is_empty(), "a text over MAX_TEXT is not kept");
        for n in 0..ENTRIES + 10 {
            docs.prepare(&mut request(&format!("{{ f{n} }}")));
            assert!(docs.len() <= ENTRIES);
        }
        // The map started over when it was full.
        assert_eq!(docs.len(), 10);
    }
}
