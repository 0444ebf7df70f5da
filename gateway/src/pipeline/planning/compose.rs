//! Composition: subgraph SDLs into a supergraph SDL, with `graphql-composition`.
//!
//! Its output leaves root types (Query, Mutation, Subscription) without
//! `@join__type(graph: …)`, although their fields carry `@join__field(graph: …)`;
//! the query planner skips types a subgraph has no `@join__type` on and then
//! finds "no paths" to root fields. [`add_root_join_types`] adds the missing
//! directives, one per subgraph that contributes root fields. It only adds what
//! is missing, so supergraphs from other composers pass through unchanged.

use std::collections::BTreeSet;

use graphql_tools::parser::schema::{
    Definition, Directive, Document, Field, TypeDefinition, TypeExtension, Value,
};

/// One subgraph to compose: its name, where the gateway reaches it, its SDL.
#[derive(Clone, Debug)]
pub struct SubgraphSource {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

/// Why composition failed; every message of the composer is kept.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("subgraph {name}: {message}")]
    Subgraph { name: String, message: String },
    #[error("composition failed:\n  {}", .0.join("\n  "))]
    Composition(Vec<String>),
    #[error("the composed supergraph does not parse: {0}")]
    Output(String),
}

/// Composes `subgraphs` into a supergraph SDL the gateway can plan over.
pub fn compose(subgraphs: &[SubgraphSource]) -> Result<String, ComposeError> {
    let mut ingested = graphql_composition::Subgraphs::default();
    for subgraph in subgraphs {
        ingested
            .ingest_str(&subgraph.sdl, &subgraph.name, Some(&subgraph.url))
            .map_err(|e| ComposeError::Subgraph {
                name: subgraph.name.clone(),
                message: e.to_string(),
            })?;
    }
    let graph = graphql_composition::compose(&mut ingested)
        .into_result()
        .map_err(|diagnostics| {
            ComposeError::Composition(diagnostics.iter_errors().map(|e| e.to_string()).collect())
        })?;
    let sdl = graphql_composition::render_federated_sdl(&graph)
        .map_err(|e| ComposeError::Output(e.to_string()))?;
    let mut document = graphql_tools::parser::parse_schema::<String>(&sdl)
        .map_err(|e| ComposeError::Output(e.to_string()))?
        .into_static();
    add_root_join_types(&mut document);
    Ok(document.to_string())
}

/// The names of the root operation types (schema definition, else the defaults).
fn root_type_names(document: &Document<'static, String>) -> BTreeSet<String> {
    let declared = document.definitions.iter().find_map(|d| match d {
        Definition::SchemaDefinition(s) => {
            Some([s.query.clone(), s.mutation.clone(), s.subscription.clone()])
        }
        _ => None,
    });
    match declared {
        Some(names) => names.into_iter().flatten().collect(),
        None => ["Query", "Mutation", "Subscription"]
            .into_iter()
            .map(String::from)
            .collect(),
    }
}

fn graphs_of(directives: &[Directive<'static, String>], directive: &str) -> BTreeSet<String> {
    directives
        .iter()
        .filter(|d| d.name == directive)
        .filter_map(|d| {
            d.arguments
                .iter()
                .find_map(|(name, value)| match (name.as_str(), value) {
                    ("graph", Value::Enum(graph)) => Some(graph.clone()),
                    _ => None,
                })
        })
        .collect()
}

fn field_graphs(fields: &[Field<'static, String>]) -> BTreeSet<String> {
    fields
        .iter()
        .flat_map(|f| graphs_of(&f.directives, "join__field"))
        .collect()
}

/// Adds `@join__type(graph: G)` to each root type for every subgraph `G` that
/// contributes one of its fields and lacks the directive. Returns how many were added.
pub fn add_root_join_types(document: &mut Document<'static, String>) -> usize {
    let roots = root_type_names(document);
    let mut added = 0;
    for definition in &mut document.definitions {
        let (name, directives, fields) = match definition {
            Definition::TypeDefinition(TypeDefinition::Object(o)) => {
                (&o.name, &mut o.directives, &o.fields)
            }
            Definition::TypeExtension(TypeExtension::Object(o)) => {
                (&o.name, &mut o.directives, &o.fields)
            }
            _ => continue,
        };
        if !roots.contains(name) {
            continue;
        }
        let present = graphs_of(directives, "join__type");
        for graph in field_graphs(fields).difference(&present) {
            directives.push(Directive {
                position: Default::default(),
                name: "join__type".into(),
                arguments: vec![("graph".into(), Value::Enum(graph.clone()))],
            });
            added += 1;
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subgraph(name: &str, sdl: &str) -> SubgraphSource {
        SubgraphSource {
            name: name.into(),
            url: format!("http://{name}.local/graphql"),
            sdl: sdl.into(),
        }
    }

    const LINK: &str =
        r#"extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])"#;

    #[test]
    fn root_types_get_a_join_type_per_contributing_subgraph() {
        let a = subgraph(
            "a",
            &format!(
                "{LINK}\ntype Query {{ one: Int }}\ntype Thing @key(fields: \"id\") {{ id: ID! }}"
            ),
        );
        let b = subgraph(
            "b",
            &format!("{LINK}\ntype Query {{ two: Int }}\ntype Mutation {{ go: Int }}"),
        );
        let sdl = compose(&[a, b]).unwrap();
        let document = graphql_tools::parser::parse_schema::<String>(&sdl)
            .unwrap()
            .into_static();
        let query = document.definitions.iter().find_map(|d| match d {
            Definition::TypeDefinition(TypeDefinition::Object(o)) if o.name == "Query" => Some(o),
            _ => None,
        });
        assert_eq!(
            graphs_of(&query.unwrap().directives, "join__type"),
            ["A".to_string(), "B".to_string()].into()
        );
        assert!(
            sdl.contains(r#"@join__graph(name: "a", url: "http://a.local/graphql")"#),
            "{sdl}"
        );
        // Idempotent: a second pass adds nothing.
        let mut again = document.clone();
        assert_eq!(add_root_join_types(&mut again), 0);
    }

    #[test]
    fn composition_errors_are_reported_not_swallowed() {
        let a = subgraph("a", &format!("{LINK}\ntype Query {{ same: Int }}"));
        let b = subgraph("b", &format!("{LINK}\ntype Query {{ same: String }}"));
        let err = compose(&[a, b]).unwrap_err();
        assert!(
            matches!(err, ComposeError::Composition(ref messages) if !messages.is_empty()),
            "{err}"
        );
    }
}
