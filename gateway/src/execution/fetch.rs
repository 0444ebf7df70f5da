//! One fetch node run: the subgraph request written with the variables it
//! uses, sent within the request's byte budget, and its answer merged
//! ([`fetch_at`] for a fetch under a flatten, [`batch_fetch`] for a batch).

use std::sync::Arc;

use hive_router_query_planner::planner::plan_nodes::{
    BatchFetchNode, FetchNode, FlattenNodePath, FlattenNodePathSegment,
};
use hive_router_query_planner::state::supergraph_state::OperationKind;
use serde_json::Value as Json;
use telemetry::otel::Kind;

use super::{
    context::{Context, State, lock, selects_nothing, variables_for},
    errors::{fetch_failed, flatten_path_text, only_path, only_root_key, repath, with_service},
    merge::{Answer, answer_errors, merge_entities, reopen_emptied},
    paths::{at_path_mut, targets},
    representations::{representations, rewrite},
};
use crate::subgraph::{FetchError, SubgraphRequest, SubgraphResponse};
use crate::value::{Map, Value};

fn operation_type(kind: Option<&OperationKind>) -> &'static str {
    match kind {
        Some(OperationKind::Mutation) => "mutation",
        Some(OperationKind::Subscription) => "subscription",
        _ => "query",
    }
}

pub(super) async fn send(
    service: &str,
    query: &str,
    kind: Option<&OperationKind>,
    variables: Map,
    ctx: &Context<'_>,
) -> Result<Arc<SubgraphResponse>, FetchError> {
    if let Some(local) = ctx.subgraphs.local.get(service) {
        return local
            .answer(query, variables, ctx.headers)
            .await
            .map(Arc::new);
    }
    let endpoint = ctx
        .subgraphs
        .endpoints
        .get(service)
        .ok_or_else(|| FetchError::Unreachable(format!("no URL for subgraph {service}")))?;
    let mut span = ctx
        .subgraphs
        .tracer
        .child_of_headers(ctx.headers, "fetch", Kind::Client);
    let mut headers = ctx.headers.clone();
    if span.is_recording() {
        span.rename(format_args!("fetch {service}"));
        span.set("subgraph.name", service);
        span.set("graphql.operation.type", operation_type(kind));
        span.set("http.request.method", "POST");
        let url = endpoint.url();
        if let Some(host) = url.host() {
            span.set("server.address", host);
        }
        if let Some(port) = url.port_u16() {
            span.set("server.port", port);
        }
    }
    // The subgraph's spans go under this fetch's.
    span.propagate(&mut headers);
    let request = SubgraphRequest {
        query,
        operation_name: None,
        variables: Value::Object(variables),
        headers,
        // Only a query's read may be answered from another request's fetch.
        shareable: ctx.shareable && matches!(kind, Some(OperationKind::Query)),
        idempotent: matches!(kind, Some(OperationKind::Query)),
    };
    use std::sync::atomic::Ordering::Relaxed;
    let budget = ctx.subgraphs.budget;
    if ctx.spent.load(Relaxed) > budget {
        return Err(FetchError::OverBudget(budget));
    }
    let started = std::time::Instant::now();
    crate::busy_poll::fetching();
    let result = ctx
        .subgraphs
        .client
        .fetch_shared_within(endpoint, request, ctx.subgraphs.timeout(service))
        .await;
    let took = started.elapsed();
    crate::busy_poll::answered(took);
    ctx.subgraphs.metrics.fetch(service, took, result.is_err());
    if let Err(err) = &result {
        span.fail(|| err.to_string());
    }
    drop(span);
    let answer = result?;
    // An answer that takes the request past its budget is dropped here:
    // what the request holds stays within the budget and one answer.
    if ctx.spent.fetch_add(answer.bytes, Relaxed) + answer.bytes > budget {
        return Err(FetchError::OverBudget(budget));
    }
    Ok(answer)
}

pub(super) async fn fetch_at(
    fetch: &FetchNode,
    path: &[FlattenNodePathSegment],
    ctx: &Context<'_>,
    state: &State,
) {
    let at_root = fetch.requires.is_none() && path.is_empty();
    if selects_nothing(
        &fetch.operation.document.operation.selection_set,
        at_root,
        ctx,
    ) {
        return;
    }
    let service = fetch.service_name.as_str();
    let mut variables = variables_for(fetch.variable_usages.as_ref(), ctx);
    let (operation, kind) = (&fetch.operation.document_str, fetch.operation_kind.as_ref());
    let Some(requires) = &fetch.requires else {
        // A root fetch (or a re-entry at a path): its data merges into every target.
        let response = send(service, operation, kind, variables, ctx).await;
        let state = &mut *lock(state);
        match response {
            Ok(mut response) => {
                let errors = answer_errors(&mut response);
                let mut data = Answer::of(&mut response, None);
                if let Some(rewrites) = &fetch.output_rewrites {
                    rewrite(data.to_mut(), rewrites, ctx.types);
                }
                let paths = if path.is_empty() {
                    vec![Vec::new()]
                } else {
                    targets(&mut state.data, path, ctx.types)
                };
                for (i, p) in paths.iter().enumerate() {
                    if let Some(target) = at_path_mut(&mut state.data, p) {
                        data.merge_into(target, i + 1 == paths.len());
                    }
                }
                let before = state.errors.len();
                state
                    .errors
                    .extend(errors.into_iter().map(|e| with_service(e, service)));
                if path.is_empty() {
                    reopen_emptied(state, before);
                }
            }
            Err(err) => {
                let one = path
                    .is_empty()
                    .then(|| only_root_key(&fetch.operation.document.operation.selection_set, ctx))
                    .flatten();
                state.errors.push(fetch_failed(service, &err, one, None));
            }
        }
        return;
    };
    let mut batch = representations(
        &mut lock(state).data,
        &[path],
        requires,
        fetch.input_rewrites.as_ref(),
        ctx.types,
    );
    if batch.reps.is_empty() {
        return;
    }
    let reps = std::mem::take(&mut batch.reps);
    let response = match super::cached::usable(ctx, kind) {
        Some(cache) => {
            super::cached::send_through(cache, service, operation, kind, variables, reps, ctx).await
        }
        None => {
            variables.insert("representations", Value::Array(reps.into()));
            send(service, operation, kind, variables, ctx).await
        }
    };
    let state = &mut *lock(state);
    match response {
        Ok(mut response) => {
            // Errors first: re-pathing looks at which entities came back null.
            let errors = answer_errors(&mut response);
            let owners = if errors.is_empty() {
                Vec::new()
            } else {
                batch.owner_paths()
            };
            let placed = crate::execution::entity_errors::place_unindexed(
                &errors,
                "_entities",
                response.data.get("_entities"),
            );
            let before = state.errors.len();
            for (error, unindexed) in errors.into_iter().zip(placed) {
                state
                    .errors
                    .extend(repath(error, service, "_entities", &owners, unindexed));
            }
            merge_entities(
                state,
                Answer::of(&mut response, Some("_entities")),
                &batch,
                &[path],
                fetch.output_rewrites.as_ref(),
                ctx.types,
            );
            reopen_emptied(state, before);
        }
        Err(err) => state.errors.push(fetch_failed(
            service,
            &err,
            only_path(batch.owner_paths()),
            Some(flatten_path_text(&[path])),
        )),
    }
}

pub(super) async fn batch_fetch(batch: &BatchFetchNode, ctx: &Context<'_>, state: &State) {
    if selects_nothing(
        &batch.operation.document.operation.selection_set,
        false,
        ctx,
    ) {
        return;
    }
    let service = batch.service_name.as_str();
    let mut variables = variables_for(batch.variable_usages.as_ref(), ctx);
    let mut batches = Vec::new();
    let cache = super::cached::usable(ctx, batch.operation_kind.as_ref());
    // Per alias, the entity of each representation (with the cache on).
    let mut ids = Vec::new();
    {
        let mut current = lock(state);
        for alias in &batch.entity_batch.aliases {
            let paths: Vec<&[FlattenNodePathSegment]> = alias
                .merge_paths
                .iter()
                .map(FlattenNodePath::as_slice)
                .collect();
            let mut found = representations(
                &mut current.data,
                &paths,
                &alias.requires,
                alias.input_rewrites.as_ref(),
                ctx.types,
            );
            if cache.is_some() {
                ids.push(super::cached::ids(&found.reps, ctx));
            }
            variables.insert(
                alias.representations_variable_name.as_str(),
                Value::Array(std::mem::take(&mut found.reps).into()),
            );
            batches.push((found, paths));
        }
    }
    if batches.iter().all(|(found, _)| found.owners.is_empty()) {
        return;
    }
    let (operation, kind) = (&batch.operation.document_str, batch.operation_kind.as_ref());
    let response = match cache {
        Some(cache) => {
            let aliases: Vec<(&str, &str)> = batch
                .entity_batch
                .aliases
                .iter()
                .map(|a| (a.alias.as_str(), a.representations_variable_name.as_str()))
                .collect();
            let batch = (operation.as_str(), kind, variables);
            super::cached::batch_through(cache, service, batch, &aliases, &ids, ctx).await
        }
        None => send(service, operation, kind, variables, ctx).await,
    };
    let state = &mut *lock(state);
    match response {
        Ok(mut response) => {
            // Errors first: re-pathing looks at which entities came back null.
            let before = state.errors.len();
            let errors = answer_errors(&mut response);
            for (i, entity_alias) in batch.entity_batch.aliases.iter().enumerate() {
                let alias = entity_alias.alias.as_str();
                let of_alias: Vec<Json> = errors
                    .iter()
                    .filter(|e| {
                        e.get("path").and_then(|p| p.get(0)).and_then(Json::as_str) == Some(alias)
                    })
                    .cloned()
                    .collect();
                if of_alias.is_empty() {
                    continue;
                }
                let placed = crate::execution::entity_errors::place_unindexed(
                    &of_alias,
                    alias,
                    response.data.get(alias),
                );
                let owners = batches[i].0.owner_paths();
                for (error, unindexed) in of_alias.into_iter().zip(placed) {
                    state
                        .errors
                        .extend(repath(error, service, alias, &owners, unindexed));
                }
            }
            let aliases = &batch.entity_batch.aliases;
            for error in errors.into_iter().filter(|e| {
                let first = e.get("path").and_then(|p| p.get(0)).and_then(Json::as_str);
                !aliases.iter().any(|a| Some(a.alias.as_str()) == first)
            }) {
                state.errors.extend(repath(error, service, "", &[], None));
            }
            for (alias, (found, paths)) in batch.entity_batch.aliases.iter().zip(&batches) {
                merge_entities(
                    state,
                    Answer::of(&mut response, Some(&alias.alias)),
                    found,
                    paths,
                    alias.output_rewrites.as_ref(),
                    ctx.types,
                );
            }
            reopen_emptied(state, before);
        }
        Err(err) => {
            let owners = batches.iter().flat_map(|(found, _)| found.owner_paths());
            // The paths of the aliases that had objects to fill, each once.
            let mut paths: Vec<&[FlattenNodePathSegment]> = Vec::new();
            for (_, alias_paths) in batches.iter().filter(|(found, _)| !found.owners.is_empty()) {
                for path in alias_paths {
                    if !paths.contains(path) {
                        paths.push(path);
                    }
                }
            }
            state.errors.push(fetch_failed(
                service,
                &err,
                only_path(owners.collect()),
                Some(flatten_path_text(&paths)),
            ));
        }
    }
}
