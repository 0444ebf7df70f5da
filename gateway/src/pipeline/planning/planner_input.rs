//! What the gateway changes in a normalized operation before the planner
//! sees it; the client's own operation still shapes the answer.
//!
//! - **Emptied selections pruned.** A constant `@skip`/`@include` can empty
//!   an inline fragment, and with it the field above (`orders { ... { n
//!   @skip(if: true) } }`): the planner fails on an empty selection (a 500).
//!   Emptied fragments are dropped and an emptied field asks for a
//!   `__typename` left out of the answer, which projects it as `{}`.
//! - **Client aliases put in a namespace of their own.** The planner takes a
//!   client alias for a response key of its own: named like a field of
//!   another type it fails (`reviews: email` → "No field found for name");
//!   named like a key or `@requires` field it fetches (`weight:
//!   shippingEstimate`), the client's value and the planner's land under one
//!   key, and one overwrites the other (or feeds a wrong `@requires` input).
//!   Every alias that differs from its field becomes `PREFIX + alias`, with
//!   a prefix no field of the supergraph starts with: the planner, the
//!   subgraphs and the merged response tree see only names that cannot
//!   collide, projection reads `PREFIX + alias` and writes `alias`, and
//!   error paths are given back their client keys ([`AliasPrefix::restore`])
//!
//! [`AliasPrefix::restore`]: crate::execution::projection::aliases::AliasPrefix::restore.
//!   Apollo Router's planner renames colliding aliases the same way.

use hive_router_query_planner::ast::{
    selection_item::SelectionItem,
    selection_set::{FieldSelection, SelectionSet},
};

/// Drops inline fragments that conditions emptied, and gives a field they
/// emptied a `__typename` the answer leaves out (see the module doc).
pub fn prune_emptied(set: &mut SelectionSet) {
    set.items.retain_mut(|item| match item {
        SelectionItem::Field(field) if !field.selections.items.is_empty() => {
            prune_emptied(&mut field.selections);
            if field.selections.items.is_empty() {
                let typename = FieldSelection::new_skipped_typename();
                field.selections.items.push(SelectionItem::Field(typename));
            }
            true
        }
        SelectionItem::InlineFragment(fragment) => {
            prune_emptied(&mut fragment.selections);
            !fragment.selections.items.is_empty()
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::projection::aliases::tests::operation;

    #[test]
    fn emptied_fragments_go_and_an_emptied_field_keeps_a_hidden_typename() {
        let mut op = operation(
            "query($v: Boolean!) { me { orders { ... on C @include(if: $v) { n } } name } }",
        );
        // As normalization leaves `n @skip(if: true)`: the fragment emptied.
        let SelectionItem::Field(me) = &mut op.selection_set.items[0] else {
            panic!()
        };
        let SelectionItem::Field(orders) = &mut me.selections.items[0] else {
            panic!()
        };
        let SelectionItem::InlineFragment(fragment) = &mut orders.selections.items[0] else {
            panic!()
        };
        fragment.selections.items.clear();
        prune_emptied(&mut op.selection_set);
        let SelectionItem::Field(me) = &op.selection_set.items[0] else {
            panic!()
        };
        let SelectionItem::Field(orders) = &me.selections.items[0] else {
            panic!()
        };
        match orders.selections.items.as_slice() {
            [SelectionItem::Field(t)] => assert!(t.name == "__typename" && t.omit_from_response),
            other => panic!("{other:?}"),
        }
        assert_eq!(me.selections.items.len(), 2, "name stays");
    }
}
