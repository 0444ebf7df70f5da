//! Operation limits: refuse what is too deep, too aliased or too wide before it
//! is planned. Checked on the normalized operation (fragments inlined), so a
//! fragment cannot hide depth.

use hive_router_query_planner::ast::{selection_item::SelectionItem, selection_set::SelectionSet};

/// The limits an operation must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nested field levels; a root field is level 1.
    pub max_depth: usize,
    /// Aliased fields anywhere in the operation.
    pub max_aliases: usize,
    /// Fields at the root.
    pub max_root_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_aliases: 30,
            max_root_fields: 20,
        }
    }
}

fn depth(selections: &SelectionSet) -> usize {
    selections
        .items
        .iter()
        .map(|item| match item {
            SelectionItem::Field(f) => 1 + depth(&f.selections),
            SelectionItem::InlineFragment(fragment) => depth(&fragment.selections),
            SelectionItem::FragmentSpread(_) => 0,
        })
        .max()
        .unwrap_or(0)
}

fn aliases(selections: &SelectionSet) -> usize {
    selections
        .items
        .iter()
        .map(|item| match item {
            SelectionItem::Field(f) => usize::from(f.alias.is_some()) + aliases(&f.selections),
            SelectionItem::InlineFragment(fragment) => aliases(&fragment.selections),
            SelectionItem::FragmentSpread(_) => 0,
        })
        .sum()
}

fn root_fields(selections: &SelectionSet) -> usize {
    selections
        .items
        .iter()
        .map(|item| match item {
            SelectionItem::Field(_) => 1,
            SelectionItem::InlineFragment(fragment) => root_fields(&fragment.selections),
            SelectionItem::FragmentSpread(_) => 0,
        })
        .sum()
}

impl Limits {
    /// `Err` with a message naming the first limit `selections` exceeds.
    pub fn check(&self, selections: &SelectionSet) -> Result<(), String> {
        let d = depth(selections);
        if d > self.max_depth {
            return Err(format!(
                "the operation is {d} levels deep; at most {} are allowed",
                self.max_depth
            ));
        }
        let a = aliases(selections);
        if a > self.max_aliases {
            return Err(format!(
                "the operation uses {a} aliases; at most {} are allowed",
                self.max_aliases
            ));
        }
        let r = root_fields(selections);
        if r > self.max_root_fields {
            return Err(format!(
                "the operation has {r} root fields; at most {} are allowed",
                self.max_root_fields
            ));
        }
        Ok(())
    }
}
