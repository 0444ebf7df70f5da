//! [`AliasPrefix`]: client aliases in a namespace of their own, so the
//! planner never takes one for a response key of its own (see
//! [`crate::pipeline::planning::planner_input`]); projection writes them
//! back as the client asked.

use hive_router_query_planner::ast::{selection_item::SelectionItem, selection_set::SelectionSet};
use serde_json::Value as Json;

/// The prefix that puts client aliases in their own namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasPrefix(String);

impl AliasPrefix {
    /// The first of `_c_`, `_c0_`, `_c1_`… that no name in `field_names`
    /// starts with (the planner's own aliases, `_e0`, `_internal_qp_alias_0`
    /// and `__batch_reps_0`, never do).
    pub fn avoiding<'a>(field_names: impl Iterator<Item = &'a str> + Clone) -> Self {
        let candidates =
            std::iter::once("_c_".to_owned()).chain((0u32..).map(|n| format!("_c{n}_")));
        let prefix = candidates
            .into_iter()
            .find(|p| !field_names.clone().any(|name| name.starts_with(p.as_str())))
            .expect("finitely many field names leave some prefix free");
        Self(prefix)
    }

    /// The response key the planner and the response tree use for a field
    /// the client asked as `alias: name` (or `name`).
    pub fn key<'a>(&self, alias: Option<&'a str>, name: &'a str) -> std::borrow::Cow<'a, str> {
        match alias {
            Some(alias) if alias != name && !self.0.is_empty() => {
                std::borrow::Cow::Owned(format!("{}{alias}", self.0))
            }
            Some(alias) => std::borrow::Cow::Borrowed(alias),
            None => std::borrow::Cow::Borrowed(name),
        }
    }

    /// Renames every client alias in `set` to its [`Self::key`].
    pub fn rename(&self, set: &mut SelectionSet) {
        for item in &mut set.items {
            match item {
                SelectionItem::Field(field) => {
                    if let Some(alias) = &field.alias
                        && alias != &field.name
                    {
                        field.alias = Some(self.key(Some(alias), &field.name).into_owned());
                    }
                    self.rename(&mut field.selections);
                }
                SelectionItem::InlineFragment(fragment) => self.rename(&mut fragment.selections),
                SelectionItem::FragmentSpread(_) => {}
            }
        }
    }

    /// Gives an error's `path` (and `extensions.affectedPath`) back the
    /// client's response keys.
    pub fn restore(&self, error: &mut Json) {
        if self.0.is_empty() {
            return;
        }
        if let Some(path) = error.get_mut("path").and_then(Json::as_array_mut) {
            for segment in path {
                if let Some(key) = segment.as_str().and_then(|s| s.strip_prefix(&self.0)) {
                    *segment = Json::String(key.to_owned());
                }
            }
        }
        let affected = error
            .get_mut("extensions")
            .and_then(|e| e.get_mut("affectedPath"));
        if let Some(Json::String(text)) = affected {
            // `a.@.b|[T]`: each segment starts with its response key.
            let restored: Vec<&str> = text
                .split('.')
                .map(|segment| segment.strip_prefix(self.0.as_str()).unwrap_or(segment))
                .collect();
            *text = restored.join(".");
        }
    }

    /// Whether an error needs [`Self::restore`].
    pub fn is_active(&self) -> bool {
        !self.0.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use hive_router_query_planner::{
        ast::operation::OperationDefinition, utils::parsing::safe_parse_operation,
    };
    use serde_json::json;

    use super::*;

    /// The one operation of `query`, as the planner's AST (also used by the
    /// planner-input tests).
    pub(crate) fn operation(query: &str) -> OperationDefinition {
        let document = safe_parse_operation(query).unwrap();
        document
            .definitions
            .into_iter()
            .find_map(|d| match d {
                graphql_tools::parser::query::Definition::Operation(op) => Some(op.into()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn the_prefix_avoids_every_field_name() {
        let prefix = AliasPrefix::avoiding(["sku", "_c_x", "_c0_y"].into_iter());
        assert_eq!(prefix, AliasPrefix("_c1_".into()));
    }

    #[test]
    fn aliases_are_renamed_and_error_paths_restored() {
        let prefix = AliasPrefix::avoiding(["weight"].into_iter());
        let mut op = operation("{ p: product { weight: shippingEstimate sku: sku name } }");
        prefix.rename(&mut op.selection_set);
        assert_eq!(
            op.to_string(),
            "{_c_p: product{_c_weight: shippingEstimate sku: sku name}}"
        );
        let mut error = json!({
            "path": ["_c_p", 0, "_c_weight"],
            "extensions": { "affectedPath": "_c_p.@.x|[T]" },
        });
        prefix.restore(&mut error);
        assert_eq!(error["path"], json!(["p", 0, "weight"]));
        assert_eq!(error["extensions"]["affectedPath"], "p.@.x|[T]");
    }
}
