//! Running a query plan and shaping its result.
//!
//! `Sequence` runs in order, `Parallel` concurrently, `Condition` on a
//! boolean variable. A `Fetch` at the root merges its data into the
//! response; under a `Flatten` (or in a `BatchFetch`) it is an entity fetch:
//! the objects at the flatten path are picked through `requires` into
//! representations (deduplicated, one `_entities` call per subgraph per
//! step), and each answer is merged back into every object it came from.
//! Subgraph errors are re-pathed to the response paths of those objects; a
//! subgraph that fails leaves its fields unset and adds an error, never
//! failing the whole request. The response tree still holds what the
//! planner added (keys, `__typename`); [`projection`] writes it as the
//! client's answer (aliases, field order, null propagation).
//!
//! In the order a fetch meets them: `walk` (the plan's nodes) →
//! `fetch` (one fetch node) → `paths` and `representations` (what
//! to send) → `merge` (what came back) → `errors` and [`entity_errors`]
//! (its errors, in the client's terms); `context` is what they share;
//! `cached` sends an entity fetch through the [`crate::entity_cache`].
//!
//! Uses [`crate::subgraph`] to fetch and the leaf modules; never the
//! pipeline, which calls it.

mod cached;
mod context;
pub mod entity_errors;
mod errors;
mod fetch;
mod merge;
mod paths;
pub mod projection;
mod representations;
#[cfg(test)]
mod tests;
mod walk;

pub use context::Execution;
pub use errors::with_service;
pub use walk::{execute, execute_event, mutates, subscription_primary};
