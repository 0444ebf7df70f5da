//! An entity fetch through the [`crate::entity_cache`]: the representations
//! whose answers are kept are answered from it, only the others are sent,
//! and the answer is put back together in the representations' order, as
//! if the subgraph had answered them all. What the subgraph's
//! `Cache-Control` allows is kept for the next request. A batch of entity
//! fetches (one per alias) is answered from the cache only when all of it
//! is kept: splitting its operation is not worth it.

use std::sync::Arc;

use hive_router_query_planner::state::supergraph_state::OperationKind;

use super::{context::Context, fetch::send};
use crate::entity_cache::{EntityCache, EntityId, Variant, policy};
use crate::subgraph::{FetchError, SubgraphResponse};
use crate::value::{Map, Value};

/// The cache an entity fetch of `kind` may use: a query's, with the cache on.
pub(super) fn usable<'c>(
    ctx: &Context<'c>,
    kind: Option<&OperationKind>,
) -> Option<&'c EntityCache> {
    let cache = ctx.subgraphs.entity_cache.as_deref()?;
    (cache.enabled() && ctx.shareable && matches!(kind, Some(OperationKind::Query)))
        .then_some(cache)
}

/// The entity each representation stands for, where it may be cached.
pub(super) fn ids(reps: &[Value], ctx: &Context<'_>) -> Vec<Option<EntityId>> {
    reps.iter()
        .map(|rep| {
            let typename = rep.get("__typename")?.as_str()?;
            EntityId::of_representation(rep, ctx.types.entity_keys(typename)?)
        })
        .collect()
}

/// Sends a batch of entity fetches (`operation`, one `_entities` field per
/// alias, each alias's representations in its variable) to `service`,
/// through `cache`: answered from it when every entity of every alias is
/// kept, else sent whole. `aliases` are `(alias, variable)` with the
/// entities of each (`ids`).
pub(super) async fn batch_through(
    cache: &EntityCache,
    service: &str,
    (operation, kind, variables): (&str, Option<&OperationKind>, Map),
    aliases: &[(&str, &str)],
    ids: &[Vec<Option<EntityId>>],
    ctx: &Context<'_>,
) -> Result<Arc<SubgraphResponse>, FetchError> {
    let mut own = variables.clone();
    for (_, variable) in aliases {
        own.remove(variable);
    }
    let variants: Vec<Variant> = aliases
        .iter()
        .map(|(alias, _)| Variant::new(service, &format!("{operation}\n{alias}"), &own))
        .collect();
    let user = ctx.caller;
    let mut data = Map::new();
    let mut complete = true;
    for ((alias, _), (variant, ids)) in aliases.iter().zip(variants.iter().zip(ids)) {
        if ids.iter().any(Option::is_none) {
            complete = false;
            break;
        }
        let kept: Option<Vec<Value>> = cache.get(ids, variant, user).await.into_iter().collect();
        match kept {
            Some(kept) => {
                data.insert(*alias, Value::Array(kept.into()));
            }
            None => {
                complete = false;
                break;
            }
        }
    }
    if complete {
        return Ok(Arc::new(SubgraphResponse {
            data: Value::Object(data),
            ..Default::default()
        }));
    }
    let response = send(service, operation, kind, variables, ctx).await?;
    if response.errors.is_empty()
        && let Some(policy) = policy::parse(response.cache_control.as_ref().map(|v| v.as_bytes()))
    {
        for ((alias, _), (variant, ids)) in aliases.iter().zip(variants.iter().zip(ids)) {
            let Some(Value::Array(items)) = response.data.get(alias) else {
                continue;
            };
            if items.len() != ids.len() {
                continue;
            }
            let answers = ids
                .iter()
                .zip(items.iter())
                .filter(|(_, v)| v.as_object().is_some())
                .filter_map(|(id, v)| Some((id.clone()?, v.clone())))
                .collect();
            cache.put(answers, variant, policy, user).await;
        }
    }
    Ok(response)
}

/// Sends the `_entities` fetch `operation` for `reps` to `service`, through
/// `cache`: `variables` are the fetch's own, without the representations.
pub(super) async fn send_through(
    cache: &EntityCache,
    service: &str,
    operation: &str,
    kind: Option<&OperationKind>,
    mut variables: Map,
    reps: Vec<Value>,
    ctx: &Context<'_>,
) -> Result<Arc<SubgraphResponse>, FetchError> {
    let variant = Variant::new(service, operation, &variables);
    let ids = ids(&reps, ctx);
    let user = ctx.caller;
    let mut kept = cache.get(&ids, &variant, user).await;
    let misses: Vec<usize> = (0..reps.len()).filter(|&i| kept[i].is_none()).collect();
    if misses.is_empty() {
        let entities = kept.into_iter().map(Option::unwrap_or_default).collect();
        return Ok(Arc::new(answered(entities, Vec::new())));
    }
    let sent: Vec<Value> = if misses.len() == reps.len() {
        reps
    } else {
        misses.iter().map(|&i| reps[i].clone()).collect()
    };
    variables.insert("representations", Value::Array(sent.into()));
    let response = send(service, operation, kind, variables, ctx).await?;
    let items = match response.data.get("_entities") {
        Some(Value::Array(items)) if items.len() == misses.len() => Some(items),
        _ => None,
    };
    if let Some(items) = items
        && response.errors.is_empty()
        && let Some(policy) = policy::parse(response.cache_control.as_ref().map(|v| v.as_bytes()))
    {
        let answers = misses
            .iter()
            .zip(items.iter())
            .filter(|(_, v)| v.as_object().is_some())
            .filter_map(|(&i, v)| Some((ids[i].clone()?, v.clone())))
            .collect();
        cache.put(answers, &variant, policy, user).await;
    }
    if misses.len() == kept.len() {
        return Ok(response);
    }
    // An answer that does not match what was asked leaves the misses null
    // (its errors say why).
    for (n, &i) in misses.iter().enumerate() {
        kept[i] = Some(items.map_or(Value::Null, |items| items[n].clone()));
    }
    // The subgraph numbered the entities it was sent: numbered again as the
    // client's representations.
    let errors = response
        .errors
        .iter()
        .cloned()
        .map(|mut error| {
            if let Some(at) = error
                .get_mut("path")
                .and_then(|p| p.as_array_mut())
                .filter(|p| p.first().and_then(|k| k.as_str()) == Some("_entities"))
                .and_then(|p| p.get_mut(1))
                && let Some(&i) = at.as_u64().and_then(|n| misses.get(n as usize))
            {
                *at = i.into();
            }
            error
        })
        .collect();
    let entities = kept.into_iter().map(Option::unwrap_or_default).collect();
    let mut whole = answered(entities, errors);
    whole.bytes = response.bytes;
    Ok(Arc::new(whole))
}

/// A subgraph's answer of `entities`, as it would have written it.
fn answered(entities: Vec<Value>, errors: Vec<serde_json::Value>) -> SubgraphResponse {
    let mut data = Map::new();
    data.insert("_entities", Value::Array(entities.into()));
    SubgraphResponse {
        data: Value::Object(data),
        errors,
        bytes: 0,
        cache_control: None,
    }
}
