//! Running a query plan and shaping its result.
//!
//! - [`walk`]: the plan walk (sequence, parallel, flatten, condition nodes),
//!   representations for entity fetches, merging subgraph answers into one
//!   response tree, and error paths;
//! - [`entity_errors`]: where a subgraph's errors on `_entities` belong in
//!   the client's response;
//! - [`projection`]: the merged tree written as the client's answer, in the
//!   client's field order and aliases, with nulls propagated.
//!
//! Uses [`crate::subgraph`] to fetch and the leaf modules; never the
//! pipeline, which calls it.

pub mod entity_errors;
pub mod projection;
pub mod walk;

pub use walk::{Execution, execute, execute_event, mutates, subscription_primary, with_service};
