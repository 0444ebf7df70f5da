//! Operation limits: what a document may cost, measured before anything expands.
//!
//! A GraphQL document is small text that can stand for an enormous
//! operation: forty fragments that each spread the previous one twice are
//! 1.6 KB of text and 2^40 fields once inlined, and 20,000 copies of one
//! field are 80 KB that every later stage walks pairwise. So the cost is
//! measured on the parsed document itself, in time linear in its text,
//! before validation, normalization or planning see it:
//!
//! - tokens, counted by the parser as it reads (it stops at the cap);
//! - per operation, over the fragment graph: fields once fragments are
//!   expanded, depth through fragments, aliases, directives and root fields.
//!   Each fragment's figures are computed once and reused wherever it is
//!   spread, so a fragment bomb costs what its text costs; figures saturate
//!   rather than overflow;
//! - variables: how many values and how deeply nested.
//!
//! Every operation of the document is measured, not only the one that runs:
//! validation walks them all, each with the fragments it spreads, so the
//! field count is their sum (1,500 operations spreading one 3,000-field
//! fragment took over 10 s to validate before). A limit that is exceeded is answered with HTTP
//! 400 and an `extensions.code` that names it ([`Limit::code`]).

use std::{collections::HashMap, time::Duration};

use graphql_tools::static_graphql::query::{Definition, Document, Selection, SelectionSet};

/// The limits an operation must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Lexical tokens in the document's text.
    pub max_tokens: usize,
    /// Nested field levels, through fragments; a root field is level 1.
    pub max_depth: usize,
    /// Fields once every fragment is expanded where it is spread.
    pub max_fields: usize,
    /// Aliased fields, counted as expanded.
    pub max_aliases: usize,
    /// Fields at the root, through fragments.
    pub max_root_fields: usize,
    /// Directives used, counted as expanded.
    pub max_directives: usize,
    /// Values in the request's variables (every scalar, list and object counts).
    pub max_variable_values: usize,
    /// Nesting of lists and objects in the request's variables.
    pub max_variable_depth: usize,
    /// The longest planning may take; past it the request is refused.
    pub max_plan_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // In line with Hive Router's and Apollo Router's parser caps.
            max_tokens: 15_000,
            max_depth: 15,
            max_fields: 5_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives: 50,
            max_variable_values: 10_000,
            max_variable_depth: 16,
            max_plan_time: Duration::from_secs(2),
        }
    }
}

/// Which limit an operation exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Tokens,
    Depth,
    Fields,
    Aliases,
    RootFields,
    Directives,
    Variables,
}

impl Limit {
    /// The stable `extensions.code` that names this limit.
    pub fn code(self) -> &'static str {
        match self {
            Self::Tokens => "MAX_TOKENS_LIMIT",
            Self::Depth => "MAX_DEPTH_LIMIT",
            Self::Fields => "MAX_FIELDS_LIMIT",
            Self::Aliases => "MAX_ALIASES_LIMIT",
            Self::RootFields => "MAX_ROOT_FIELDS_LIMIT",
            Self::Directives => "MAX_DIRECTIVES_LIMIT",
            Self::Variables => "MAX_VARIABLES_LIMIT",
        }
    }
}

/// A limit an operation exceeded, and by how much.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Exceeded {
    pub limit: Limit,
    pub message: String,
}

impl Exceeded {
    fn new(limit: Limit, what: &str, found: u64, allowed: usize) -> Self {
        Self {
            limit,
            message: format!("the operation has {found} {what}; at most {allowed} are allowed"),
        }
    }

    /// The document has more tokens than [`Limits::max_tokens`].
    pub fn tokens(allowed: usize) -> Self {
        Self {
            limit: Limit::Tokens,
            message: format!("the document has more than {allowed} tokens"),
        }
    }
}

/// What a selection set costs once its fragments are expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub depth: u64,
    pub aliases: u64,
    pub directives: u64,
    /// Fields at this selection set's own level (through fragments).
    pub width: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.fields = self.fields.saturating_add(other.fields);
        self.depth = self.depth.max(other.depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.directives = self.directives.saturating_add(other.directives);
        self.width = self.width.saturating_add(other.width);
    }
}

/// Measures selection sets over a document's fragment graph, each fragment once.
struct Meter<'d> {
    fragments: HashMap<&'d str, &'d SelectionSet>,
    /// `None` while a fragment is being measured: a spread of it then is a
    /// cycle, which validation reports; it counts nothing here.
    measured: HashMap<&'d str, Option<Cost>>,
}

impl<'d> Meter<'d> {
    /// The cost of `set`.
    fn selection_set(&mut self, set: &'d SelectionSet) -> Cost {
        let mut cost = Cost::default();
        for selection in &set.items {
            match selection {
                Selection::Field(field) => {
                    let inner = self.selection_set(&field.selection_set);
                    cost.add(Cost {
                        fields: inner.fields.saturating_add(1),
                        depth: inner.depth.saturating_add(1),
                        aliases: inner
                            .aliases
                            .saturating_add(u64::from(field.alias.is_some())),
                        directives: inner
                            .directives
                            .saturating_add(field.directives.len() as u64),
                        width: 1,
                    });
                }
                Selection::InlineFragment(inline) => {
                    let mut inner = self.selection_set(&inline.selection_set);
                    inner.directives = inner
                        .directives
                        .saturating_add(inline.directives.len() as u64);
                    cost.add(inner);
                }
                Selection::FragmentSpread(spread) => {
                    let mut inner = self.fragment(&spread.fragment_name);
                    inner.directives = inner
                        .directives
                        .saturating_add(spread.directives.len() as u64);
                    cost.add(inner);
                }
            }
        }
        cost
    }

    fn fragment(&mut self, name: &'d str) -> Cost {
        match self.measured.get(name) {
            Some(Some(cost)) => return *cost,
            Some(None) => return Cost::default(),
            None => {}
        }
        let Some(&set) = self.fragments.get(name) else {
            // An unknown fragment: validation reports it.
            return Cost::default();
        };
        self.measured.insert(name, None);
        let cost = self.selection_set(set);
        self.measured.insert(name, Some(cost));
        cost
    }
}

/// The fields of every operation of `document` together, and the costliest
/// operation's other figures.
pub fn measure(document: &Document) -> Cost {
    let mut fragments = HashMap::new();
    let mut fragment_directives = HashMap::new();
    for definition in &document.definitions {
        if let Definition::Fragment(fragment) = definition {
            fragments.insert(fragment.name.as_str(), &fragment.selection_set);
            fragment_directives.insert(fragment.name.as_str(), fragment.directives.len());
        }
    }
    let mut meter = Meter {
        fragments,
        measured: HashMap::new(),
    };
    let mut worst = Cost::default();
    for definition in &document.definitions {
        let Definition::Operation(operation) = definition else {
            continue;
        };
        use graphql_tools::static_graphql::query::OperationDefinition as Op;
        let (set, directives) = match operation {
            Op::SelectionSet(set) => (set, 0),
            Op::Query(q) => (&q.selection_set, q.directives.len()),
            Op::Mutation(m) => (&m.selection_set, m.directives.len()),
            Op::Subscription(s) => (&s.selection_set, s.directives.len()),
        };
        let mut cost = meter.selection_set(set);
        cost.directives = cost.directives.saturating_add(directives as u64);
        worst = Cost {
            // Validation walks every operation with its fragments: their
            // fields add up, where the other figures are each operation's.
            fields: worst.fields.saturating_add(cost.fields),
            depth: worst.depth.max(cost.depth),
            aliases: worst.aliases.max(cost.aliases),
            directives: worst.directives.max(cost.directives),
            width: worst.width.max(cost.width),
        };
    }
    // Directives on fragment definitions apply wherever they are spread;
    // counted once each (they are few and bounded by the text).
    worst.directives = worst
        .directives
        .saturating_add(fragment_directives.values().sum::<usize>() as u64);
    worst
}

impl Limits {
    /// `Err` naming the first limit `document` exceeds.
    pub fn check(&self, document: &Document) -> Result<Cost, Exceeded> {
        let cost = measure(document);
        let checks = [
            (Limit::Depth, "levels of depth", cost.depth, self.max_depth),
            (
                Limit::Fields,
                "fields once fragments are expanded",
                cost.fields,
                self.max_fields,
            ),
            (Limit::Aliases, "aliases", cost.aliases, self.max_aliases),
            (
                Limit::RootFields,
                "root fields",
                cost.width,
                self.max_root_fields,
            ),
            (
                Limit::Directives,
                "directives",
                cost.directives,
                self.max_directives,
            ),
        ];
        for (limit, what, found, allowed) in checks {
            if found > allowed as u64 {
                return Err(Exceeded::new(limit, what, found, allowed));
            }
        }
        Ok(cost)
    }

    /// `Err` when the request's variables hold too many values or nest too deeply.
    pub fn check_variables(
        &self,
        variables: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Exceeded> {
        use serde_json::Value;
        let too_many = || Exceeded {
            limit: Limit::Variables,
            message: format!(
                "the variables hold more than {} values",
                self.max_variable_values
            ),
        };
        // An explicit stack: a hostile payload must not recurse this thread.
        let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 1)).collect();
        let mut values = stack.len();
        if values > self.max_variable_values {
            return Err(too_many());
        }
        while let Some((value, depth)) = stack.pop() {
            let children: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                _ => continue,
            };
            if depth >= self.max_variable_depth && !children.is_empty() {
                return Err(Exceeded {
                    limit: Limit::Variables,
                    message: format!(
                        "the variables nest deeper than {} levels",
                        self.max_variable_depth
                    ),
                });
            }
            values += children.len();
            if values > self.max_variable_values {
                return Err(too_many());
            }
            stack.extend(children.into_iter().map(|child| (child, depth + 1)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(text: &str) -> Cost {
        measure(&hive_router_query_planner::utils::parsing::safe_parse_operation(text).unwrap())
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_expanding_it() {
        let mut text = String::from("query { ...F39 } fragment F0 on Query { __typename }");
        for i in 1..40 {
            text.push_str(&format!(
                " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
                p = i - 1
            ));
        }
        let started = std::time::Instant::now();
        let cost = cost(&text);
        assert_eq!(cost.fields, 1 << 39);
        assert_eq!(cost.width, 1 << 39);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn depth_aliases_and_directives_count_through_fragments() {
        let cost = cost(
            "{ a: me { ...U ...U } } fragment U on User { b: orders @skip(if: false) { totalCount } }",
        );
        assert_eq!(cost.depth, 3);
        assert_eq!(cost.aliases, 3, "one at the root, one per spread of U");
        assert_eq!(cost.directives, 2);
        assert_eq!(cost.fields, 5);
        assert_eq!(cost.width, 1);
    }

    #[test]
    fn a_fragment_cycle_counts_nothing_and_ends() {
        let cost =
            cost("{ ...A } fragment A on Query { me { id } ...B } fragment B on Query { ...A }");
        assert_eq!(cost.fields, 2);
    }

    #[test]
    fn deep_or_wide_variables_are_refused_without_recursion() {
        let limits = Limits::default();
        let mut deep = serde_json::json!(1);
        for _ in 0..100 {
            deep = serde_json::json!([deep]);
        }
        let vars = serde_json::json!({ "v": deep });
        let err = limits
            .check_variables(vars.as_object().unwrap())
            .unwrap_err();
        assert_eq!(err.limit.code(), "MAX_VARIABLES_LIMIT");
        let wide = serde_json::json!({ "v": vec![0; 20_000] });
        assert!(limits.check_variables(wide.as_object().unwrap()).is_err());
        let fine = serde_json::json!({ "items": [{ "sku": "A", "quantity": 1 }] });
        assert!(limits.check_variables(fine.as_object().unwrap()).is_ok());
    }
}
