//! Execution: runs a query plan against the subgraphs and merges their
//! answers into one response tree.
//!
//! `Sequence` runs in order, `Parallel` concurrently, `Condition` on a boolean
//! variable. A `Fetch` at the root merges its data into the response; under a
//! `Flatten` (or in a `BatchFetch`) it is an entity fetch: the objects at the
//! flatten path are projected through `requires` into representations
//! (deduplicated, one `_entities` call per subgraph per step), and each answer
//! is merged back into every object it came from. Subgraph errors are re-pathed
//! to the response paths of those objects; a subgraph that fails leaves its
//! fields unset and adds an error, never failing the whole request.
//!
//! The response tree still holds what the planner added (keys, `__typename`);
//! projecting it onto the client's selection (aliases, null propagation) is
//! the next stage.

use std::collections::HashMap;

use futures::future::{BoxFuture, join_all};
use hive_router_query_planner::{
    ast::{selection_item::SelectionItem, selection_set::SelectionSet},
    planner::plan_nodes::{
        BatchFetchNode, FetchNode, FetchNodePathSegment, FetchRewrite, FlattenNodePath,
        FlattenNodePathSegment, PlanNode, QueryPlan,
    },
};
use hyper::{HeaderMap, Uri};
use serde_json::{Map, Value, json};

use crate::fetch::{FetchError, SubgraphClient, SubgraphRequest};

/// Where each subgraph is reached, and the client that reaches them.
pub struct Subgraphs {
    urls: HashMap<String, Uri>,
    client: SubgraphClient,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Subgraphs {
    /// `urls` by subgraph name (as the supergraph's `join__Graph` names them).
    pub fn new(
        urls: HashMap<String, Uri>,
        client: SubgraphClient,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            urls,
            client,
            metrics,
        }
    }

    /// Asks every subgraph `{ __typename }` within `deadline`; the ones that
    /// did not answer, with why.
    pub async fn unreachable(&self, deadline: std::time::Duration) -> Vec<(String, String)> {
        let probes = self.urls.iter().map(|(name, url)| async move {
            let request = SubgraphRequest {
                query: "{ __typename }",
                operation_name: None,
                variables: Value::Object(Map::new()),
                headers: HeaderMap::new(),
            };
            match tokio::time::timeout(deadline, self.client.fetch(url, request)).await {
                Ok(Ok(response)) if response.errors.is_empty() => None,
                Ok(Ok(response)) => Some((
                    name.clone(),
                    format!("answered errors: {:?}", response.errors),
                )),
                Ok(Err(err)) => Some((name.clone(), err.to_string())),
                Err(_) => Some((name.clone(), format!("no answer within {deadline:?}"))),
            }
        });
        let mut down: Vec<_> = join_all(probes).await.into_iter().flatten().collect();
        down.sort();
        down
    }
}

/// The merged answer of a plan: data (planner fields included) and errors.
#[derive(Debug, Default)]
pub struct Execution {
    pub data: Value,
    pub errors: Vec<Value>,
}

struct Context<'a> {
    subgraphs: &'a Subgraphs,
    variables: &'a Map<String, Value>,
    headers: &'a HeaderMap,
}

/// Runs `plan` with the client's coerced `variables`, forwarding `headers`.
pub async fn execute(
    plan: &QueryPlan,
    subgraphs: &Subgraphs,
    variables: &Map<String, Value>,
    headers: &HeaderMap,
) -> Execution {
    let ctx = Context {
        subgraphs,
        variables,
        headers,
    };
    let mut state = Execution {
        data: Value::Object(Map::new()),
        errors: Vec::new(),
    };
    if let Some(node) = &plan.node {
        run(node, &ctx, &mut state).await;
    }
    state
}

fn run<'a>(
    node: &'a PlanNode,
    ctx: &'a Context<'a>,
    state: &'a mut Execution,
) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        match node {
            PlanNode::Sequence(seq) => {
                for child in &seq.nodes {
                    run(child, ctx, state).await;
                }
            }
            PlanNode::Parallel(par) => {
                // Each branch starts from the same tree and only adds to it, so
                // branches run on copies and their additions are merged after.
                let branches = par.nodes.iter().map(|child| {
                    let mut branch = Execution {
                        data: state.data.clone(),
                        errors: Vec::new(),
                    };
                    async move {
                        run(child, ctx, &mut branch).await;
                        branch
                    }
                });
                for branch in join_all(branches).await {
                    deep_merge(&mut state.data, branch.data);
                    state.errors.extend(branch.errors);
                }
            }
            PlanNode::Condition(cond) => {
                let on = matches!(ctx.variables.get(&cond.condition), Some(Value::Bool(true)));
                let chosen = if on {
                    &cond.if_clause
                } else {
                    &cond.else_clause
                };
                if let Some(child) = chosen {
                    run(child, ctx, state).await;
                }
            }
            PlanNode::Fetch(fetch) => fetch_at(fetch, &[], ctx, state).await,
            PlanNode::Flatten(flatten) => match flatten.node.as_ref() {
                PlanNode::Fetch(fetch) => {
                    fetch_at(fetch, flatten.path.as_slice(), ctx, state).await
                }
                other => state.errors.push(gateway_error(&format!(
                    "unsupported node under Flatten: {other:?}"
                ))),
            },
            PlanNode::BatchFetch(batch) => batch_fetch(batch, ctx, state).await,
            PlanNode::Subscription(_) | PlanNode::Defer(_) => state.errors.push(gateway_error(
                "subscriptions and @defer are not served over this endpoint",
            )),
        }
    })
}

/// A concrete position in the response: object keys and list indexes.
type ResponsePath = Vec<Value>;

/// The concrete paths of the objects a flatten path designates in `data`.
fn targets(data: &Value, path: &[FlattenNodePathSegment]) -> Vec<ResponsePath> {
    fn walk(
        value: &Value,
        rest: &[FlattenNodePathSegment],
        at: &mut ResponsePath,
        out: &mut Vec<ResponsePath>,
    ) {
        match (rest.first(), value) {
            (_, Value::Null) => {}
            (_, Value::Array(items)) => {
                // Lists are walked element by element whether or not the path says `@`.
                let rest = if matches!(rest.first(), Some(FlattenNodePathSegment::List)) {
                    &rest[1..]
                } else {
                    rest
                };
                for (i, item) in items.iter().enumerate() {
                    at.push(json!(i));
                    walk(item, rest, at, out);
                    at.pop();
                }
            }
            (None, Value::Object(_)) => out.push(at.clone()),
            (Some(FlattenNodePathSegment::Field(key)), Value::Object(map)) => {
                if let Some(child) = map.get(key) {
                    at.push(json!(key));
                    walk(child, &rest[1..], at, out);
                    at.pop();
                }
            }
            (Some(FlattenNodePathSegment::TypeCondition(types)), Value::Object(map)) => {
                let matches = map
                    .get("__typename")
                    .and_then(Value::as_str)
                    .is_none_or(|t| types.contains(t));
                if matches {
                    walk(value, &rest[1..], at, out);
                }
            }
            (Some(FlattenNodePathSegment::List), Value::Object(_)) => {
                walk(value, &rest[1..], at, out)
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, path, &mut Vec::new(), &mut out);
    out
}

fn at_path<'v>(data: &'v Value, path: &ResponsePath) -> Option<&'v Value> {
    path.iter().try_fold(data, |v, seg| match seg {
        Value::String(k) => v.get(k),
        Value::Number(i) => v.get(i.as_u64()? as usize),
        _ => None,
    })
}

fn at_path_mut<'v>(data: &'v mut Value, path: &ResponsePath) -> Option<&'v mut Value> {
    path.iter().try_fold(data, |v, seg| match seg {
        Value::String(k) => v.get_mut(k),
        Value::Number(i) => v.get_mut(i.as_u64()? as usize),
        _ => None,
    })
}

/// `value` projected through `selections` (fields by name, inline fragments by `__typename`).
fn project(value: &Value, selections: &SelectionSet) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| project(v, selections)).collect()),
        Value::Object(map) if !selections.items.is_empty() => {
            let mut out = Map::new();
            project_into(map, selections, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn project_into(map: &Map<String, Value>, selections: &SelectionSet, out: &mut Map<String, Value>) {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => {
                if let Some(v) = map.get(&field.name) {
                    let projected = project(v, &field.selections);
                    match (out.get_mut(&field.name), projected) {
                        (Some(existing), projected) => deep_merge(existing, projected),
                        (None, projected) => {
                            out.insert(field.name.clone(), projected);
                        }
                    }
                }
            }
            SelectionItem::InlineFragment(fragment) => {
                let typename = map.get("__typename").and_then(Value::as_str);
                if typename.is_none_or(|t| t == fragment.type_condition) {
                    project_into(map, &fragment.selections, out);
                }
            }
            SelectionItem::FragmentSpread(_) => {}
        }
    }
}

/// Applies value setters and key renamers (the planner's input/output rewrites).
fn rewrite(value: &mut Value, rewrites: &[FetchRewrite]) {
    fn apply(value: &mut Value, path: &[FetchNodePathSegment], rewrite: &FetchRewrite) {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(|v| apply(v, path, rewrite));
            return;
        }
        let Value::Object(map) = value else { return };
        match path {
            [] => {}
            [FetchNodePathSegment::TypenameEquals(types), rest @ ..] => {
                if map
                    .get("__typename")
                    .and_then(Value::as_str)
                    .is_some_and(|t| types.contains(t))
                {
                    apply(value, rest, rewrite);
                }
            }
            [FetchNodePathSegment::Key(key)] => match rewrite {
                FetchRewrite::ValueSetter(setter) => {
                    map.insert(key.clone(), Value::String(setter.set_value_to.clone()));
                }
                FetchRewrite::KeyRenamer(renamer) => {
                    if let Some(v) = map.remove(key) {
                        map.insert(renamer.rename_key_to.clone(), v);
                    }
                }
            },
            [FetchNodePathSegment::Key(key), rest @ ..] => {
                if let Some(child) = map.get_mut(key) {
                    apply(child, rest, rewrite);
                }
            }
        }
    }
    for r in rewrites {
        let path = match r {
            FetchRewrite::ValueSetter(s) => &s.path,
            FetchRewrite::KeyRenamer(k) => &k.path,
        };
        apply(value, path, r);
    }
}

/// Merges `from` into `into`: objects key by key, lists element-wise, anything else replaced.
pub fn deep_merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter_mut().zip(b) {
                deep_merge(x, y);
            }
        }
        (into, Value::Null) if !into.is_null() => {}
        (into, from) => *into = from,
    }
}

/// Representations of the objects at `paths`, deduplicated; returns them and,
/// per representation, the paths that share it.
fn representations(
    data: &Value,
    paths: Vec<ResponsePath>,
    requires: &SelectionSet,
    input_rewrites: Option<&Vec<FetchRewrite>>,
) -> (Vec<Value>, Vec<Vec<ResponsePath>>) {
    let mut reps: Vec<Value> = Vec::new();
    let mut owners: Vec<Vec<ResponsePath>> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for path in paths {
        let Some(entity) = at_path(data, &path) else {
            continue;
        };
        let mut rep = project(entity, requires);
        if let Some(rewrites) = input_rewrites {
            rewrite(&mut rep, rewrites);
        }
        if rep.as_object().is_none_or(|m| m.is_empty()) {
            continue;
        }
        let key = rep.to_string();
        let index = *seen.entry(key).or_insert_with(|| {
            reps.push(rep);
            owners.push(Vec::new());
            reps.len() - 1
        });
        owners[index].push(path);
    }
    (reps, owners)
}

fn variables_for(
    usages: Option<&std::collections::BTreeSet<String>>,
    ctx: &Context<'_>,
) -> Map<String, Value> {
    usages
        .into_iter()
        .flatten()
        .filter_map(|name| ctx.variables.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

async fn send(
    service: &str,
    query: &str,
    variables: Map<String, Value>,
    ctx: &Context<'_>,
) -> Result<crate::fetch::SubgraphResponse, FetchError> {
    let url = ctx
        .subgraphs
        .urls
        .get(service)
        .ok_or_else(|| FetchError::Unreachable(format!("no URL for subgraph {service}")))?;
    let request = SubgraphRequest {
        query,
        operation_name: None,
        variables: Value::Object(variables),
        headers: ctx.headers.clone(),
    };
    let started = std::time::Instant::now();
    let result = ctx.subgraphs.client.fetch(url, request).await;
    ctx.subgraphs
        .metrics
        .fetch(service, started.elapsed(), result.is_err());
    result
}

fn gateway_error(message: &str) -> Value {
    json!({ "message": message, "extensions": { "code": "INTERNAL_SERVER_ERROR" } })
}

/// A failed fetch, reported at each response path it was to fill.
fn fetch_failed(service: &str, err: &FetchError, paths: &[ResponsePath]) -> Vec<Value> {
    let error = |path: Option<&ResponsePath>| {
        let mut e = json!({
            "message": format!("subgraph {service} failed: {err}"),
            "extensions": { "code": "SUBGRAPH_ERROR", "serviceName": service },
        });
        if let Some(path) = path {
            e["path"] = Value::Array(path.clone());
        }
        e
    };
    if paths.is_empty() {
        vec![error(None)]
    } else {
        paths.iter().map(|p| error(Some(p))).collect()
    }
}

/// A subgraph error re-pathed: `_entities.i.rest` (under `alias`) becomes each owner's path + rest.
fn repath(
    mut error: Value,
    service: &str,
    alias: &str,
    owners: &[Vec<ResponsePath>],
) -> Vec<Value> {
    if let Some(ext) = error.as_object_mut() {
        let extensions = ext.entry("extensions").or_insert_with(|| json!({}));
        if let Some(map) = extensions.as_object_mut() {
            map.entry("serviceName").or_insert_with(|| json!(service));
        }
    }
    let path = error
        .get("path")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let index = match (
        path.first().and_then(Value::as_str),
        path.get(1).and_then(Value::as_u64),
    ) {
        (Some(first), Some(i)) if first == alias => i as usize,
        _ => {
            if let Some(map) = error.as_object_mut() {
                map.remove("path");
            }
            return vec![error];
        }
    };
    owners
        .get(index)
        .into_iter()
        .flatten()
        .map(|owner| {
            let mut e = error.clone();
            let mut full = owner.clone();
            full.extend(path.iter().skip(2).cloned());
            e["path"] = Value::Array(full);
            e
        })
        .collect()
}

async fn fetch_at(
    fetch: &FetchNode,
    path: &[FlattenNodePathSegment],
    ctx: &Context<'_>,
    state: &mut Execution,
) {
    let service = fetch.service_name.as_str();
    let mut variables = variables_for(fetch.variable_usages.as_ref(), ctx);
    let paths = if path.is_empty() {
        vec![Vec::new()]
    } else {
        targets(&state.data, path)
    };
    let Some(requires) = &fetch.requires else {
        // A root fetch (or a re-entry at a path): its data merges into every target.
        match send(service, &fetch.operation.document_str, variables, ctx).await {
            Ok(response) => {
                for p in &paths {
                    if let Some(target) = at_path_mut(&mut state.data, p) {
                        deep_merge(target, response.data.clone());
                    }
                }
                state.errors.extend(
                    response
                        .errors
                        .into_iter()
                        .map(|e| with_service(e, service)),
                );
            }
            Err(err) => state.errors.extend(fetch_failed(service, &err, &[])),
        }
        return;
    };
    let (reps, owners) =
        representations(&state.data, paths, requires, fetch.input_rewrites.as_ref());
    if reps.is_empty() {
        return;
    }
    variables.insert("representations".into(), Value::Array(reps));
    match send(service, &fetch.operation.document_str, variables, ctx).await {
        Ok(response) => {
            merge_entities(
                state,
                response.data.get("_entities"),
                &owners,
                fetch.output_rewrites.as_ref(),
            );
            for error in response.errors {
                state
                    .errors
                    .extend(repath(error, service, "_entities", &owners));
            }
        }
        Err(err) => state
            .errors
            .extend(fetch_failed(service, &err, &owners.concat())),
    }
}

fn merge_entities(
    state: &mut Execution,
    entities: Option<&Value>,
    owners: &[Vec<ResponsePath>],
    output_rewrites: Option<&Vec<FetchRewrite>>,
) {
    let Some(Value::Array(entities)) = entities else {
        return;
    };
    for (entity, paths) in entities.iter().zip(owners) {
        let mut entity = entity.clone();
        if let Some(rewrites) = output_rewrites {
            rewrite(&mut entity, rewrites);
        }
        for p in paths {
            if let Some(target) = at_path_mut(&mut state.data, p) {
                deep_merge(target, entity.clone());
            }
        }
    }
}

fn with_service(mut error: Value, service: &str) -> Value {
    if let Some(map) = error.as_object_mut() {
        let extensions = map.entry("extensions").or_insert_with(|| json!({}));
        if let Some(ext) = extensions.as_object_mut() {
            ext.entry("serviceName").or_insert_with(|| json!(service));
        }
    }
    error
}

async fn batch_fetch(batch: &BatchFetchNode, ctx: &Context<'_>, state: &mut Execution) {
    let service = batch.service_name.as_str();
    let mut variables = variables_for(batch.variable_usages.as_ref(), ctx);
    let mut all_owners = Vec::new();
    for alias in &batch.entity_batch.aliases {
        let paths: Vec<ResponsePath> = alias
            .merge_paths
            .iter()
            .flat_map(|p: &FlattenNodePath| targets(&state.data, p.as_slice()))
            .collect();
        let (reps, owners) = representations(
            &state.data,
            paths,
            &alias.requires,
            alias.input_rewrites.as_ref(),
        );
        variables.insert(
            alias.representations_variable_name.clone(),
            Value::Array(reps),
        );
        all_owners.push(owners);
    }
    if all_owners.iter().all(Vec::is_empty) {
        return;
    }
    match send(service, &batch.operation.document_str, variables, ctx).await {
        Ok(response) => {
            for (alias, owners) in batch.entity_batch.aliases.iter().zip(&all_owners) {
                merge_entities(
                    state,
                    response.data.get(&alias.alias),
                    owners,
                    alias.output_rewrites.as_ref(),
                );
            }
            for error in response.errors {
                let alias = error
                    .get("path")
                    .and_then(|p| p.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let owners = batch
                    .entity_batch
                    .aliases
                    .iter()
                    .position(|a| a.alias == alias)
                    .map(|i| all_owners[i].as_slice())
                    .unwrap_or(&[]);
                state.errors.extend(repath(error, service, &alias, owners));
            }
        }
        Err(err) => {
            let paths: Vec<ResponsePath> = all_owners.into_iter().flatten().flatten().collect();
            state.errors.extend(fetch_failed(service, &err, &paths));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_merge_adds_fields_and_keeps_data_over_null() {
        let mut a = json!({ "p": [{ "sku": "A" }, { "sku": "B" }], "x": 1 });
        deep_merge(
            &mut a,
            json!({ "p": [{ "stock": 1 }, { "stock": 2 }], "x": null }),
        );
        assert_eq!(
            a,
            json!({ "p": [{ "sku": "A", "stock": 1 }, { "sku": "B", "stock": 2 }], "x": 1 })
        );
    }

    #[test]
    fn flatten_paths_find_every_object_through_lists() {
        let data = json!({ "products": { "edges": [{ "node": { "sku": "A" } }, { "node": null }, { "node": { "sku": "B" } }] } });
        let path = [
            FlattenNodePathSegment::Field("products".into()),
            FlattenNodePathSegment::Field("edges".into()),
            FlattenNodePathSegment::List,
            FlattenNodePathSegment::Field("node".into()),
        ];
        let found = targets(&data, &path);
        assert_eq!(
            found,
            [
                vec![json!("products"), json!("edges"), json!(0), json!("node")],
                vec![json!("products"), json!("edges"), json!(2), json!("node")]
            ]
        );
    }

    #[test]
    fn entity_errors_land_on_every_owner_path() {
        let owners = vec![vec![vec![json!("a"), json!(0)], vec![json!("b")]]];
        let error = json!({ "message": "boom", "path": ["_entities", 0, "stock"] });
        let repathed = repath(error, "inventory", "_entities", &owners);
        assert_eq!(repathed.len(), 2);
        assert_eq!(repathed[0]["path"], json!(["a", 0, "stock"]));
        assert_eq!(repathed[1]["path"], json!(["b", "stock"]));
        assert_eq!(repathed[1]["extensions"]["serviceName"], "inventory");
    }
}
