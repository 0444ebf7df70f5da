//! What a subgraph's errors say about its answer: which entity an
//! `_entities` error without an index belongs to, and which nulls it
//! left are not values but objects it gave up.
//!
//! async-graphql (like some other servers) departs from the spec in three
//! ways the gateway must not pass on: an `_entities` error path leaves the
//! entity's index out (`_entities.reviews.1.flagged`); a failed field's key
//! is left out rather than set to null, with no null propagation; and an
//! object whose every field failed (or was skipped) is sent as null. The
//! gateway places each error on the entity it plainly marked, and turns a
//! null the error path goes *through* back into an object: projection then
//! nulls the failed field and propagates that null as far as the schema's
//! non-null types say, and no further.
//!
//! Hive Router leaves such an unindexed error on the subgraph's path and
//! Apollo Router on the fetch's; here it is placed when the answer says
//! where, and sent without a path when it does not.

use serde_json::Value as Json;

use crate::value::{Map, Value};

/// How plainly an error at `rest` left its mark on an entity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Mark {
    /// Following `rest` reaches a value, or a list index the entity does not
    /// have: the error is not this entity's.
    None,
    /// It ends at a null: maybe the error's, maybe a plain null value.
    Null,
    /// It meets an absent key, a null before its end, or a null entity:
    /// what async-graphql leaves where a field failed.
    Absent,
}

/// Where following `rest` into `entity` ends.
fn marked_by_error(entity: &Value, rest: &[Json]) -> Mark {
    let mut at = entity;
    for (i, segment) in rest.iter().enumerate() {
        if at.is_null() {
            return Mark::Absent;
        }
        let next = match (segment, at) {
            (Json::String(key), Value::Object(map)) => map.get(key),
            (Json::Number(n), Value::Array(items)) => {
                match n.as_u64().and_then(|n| items.get(n as usize)) {
                    Some(item) => Some(item),
                    // An error cannot be inside an item that is not there.
                    None => return Mark::None,
                }
            }
            _ => return Mark::None,
        };
        match next {
            None => return Mark::Absent,
            Some(value) if value.is_null() && i + 1 == rest.len() => return Mark::Null,
            Some(value) => at = value,
        }
    }
    if at.is_null() {
        Mark::Absent
    } else {
        Mark::None
    }
}

/// For each of `errors` (a subgraph's, on `entities` answered under
/// `alias`) whose path leaves the entity's index out, the entity it belongs
/// to, if the answer says: the entities marked most plainly by its path
/// (the rest after `alias`). Errors with one path are matched in order with
/// the entities that path marked, when they are as many (async-graphql
/// reports them in entity order); otherwise they are not placed.
pub fn place_unindexed(
    errors: &[Json],
    alias: &str,
    entities: Option<&Value>,
) -> Vec<Option<usize>> {
    let rest_of = |error: &Json| -> Option<Vec<Json>> {
        let path = error.get("path")?.as_array()?;
        let unindexed = path.first()?.as_str()? == alias && !path.get(1)?.is_number();
        unindexed.then(|| path[1..].to_vec())
    };
    let rests: Vec<Option<Vec<Json>>> = errors.iter().map(rest_of).collect();
    let Some(entities) = entities.and_then(Value::as_array) else {
        return vec![None; errors.len()];
    };
    let mut placed = vec![None; errors.len()];
    let mut done = vec![false; errors.len()];
    for i in 0..errors.len() {
        let Some(rest) = rests[i].as_ref().filter(|_| !done[i]) else {
            continue;
        };
        let same: Vec<usize> = (i..errors.len())
            .filter(|&j| rests[j].as_ref() == Some(rest))
            .collect();
        let marks: Vec<Mark> = entities.iter().map(|e| marked_by_error(e, rest)).collect();
        let strongest = marks.iter().copied().max().unwrap_or(Mark::None);
        let marked: Vec<usize> = (0..marks.len())
            .filter(|&e| strongest != Mark::None && marks[e] == strongest)
            .collect();
        let matched = marked.len() == same.len();
        for (k, &j) in same.iter().enumerate() {
            done[j] = true;
            placed[j] = matched.then(|| marked[k]);
        }
    }
    placed
}

/// Turns the nulls an error's `path` goes through in `data` back into
/// (empty) objects: the subgraph was resolving fields inside them, so they
/// were objects it gave up when a field failed, not null values. Only a
/// null followed by a field name is an object; the rest of the path is
/// left as it is.
pub fn reopen_emptied(data: &mut Value, path: &[Json]) {
    let mut at = data;
    for (segment, next) in path.iter().zip(path.iter().skip(1)) {
        let child = match (segment, at) {
            (Json::String(key), Value::Object(map)) => map.get_mut(key),
            (Json::Number(n), value) => n.as_u64().and_then(|n| value.item_mut(n as usize)),
            _ => None,
        };
        let Some(child) = child else { return };
        if child.is_null() && next.is_string() {
            *child = Value::Object(Map::new());
        }
        at = child;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn placed(errors: Json, entities: Json) -> Vec<Option<usize>> {
        let errors = errors.as_array().unwrap().clone();
        place_unindexed(&errors, "_entities", Some(&Value::from(entities)))
    }

    #[test]
    fn an_unindexed_error_lands_on_the_one_entity_it_marked() {
        let boom = json!([{ "message": "boom", "path": ["_entities", "a"] }]);
        assert_eq!(
            placed(
                boom.clone(),
                json!([{ "a": 1, "b": 2 }, { "b": 2 }, { "a": 3 }])
            ),
            [Some(1)]
        );
        assert_eq!(
            placed(boom, json!([{ "a": 1 }, { "a": 1 }, null])),
            [Some(2)]
        );
    }

    #[test]
    fn an_item_an_entity_lacks_does_not_mark_it() {
        // async-graphql's answer to `reviews { flagged }` where review 1 of
        // the first product failed: the review sent as null; the second
        // product has no review 1 at all.
        let error =
            json!([{ "message": "moderation", "path": ["_entities", "reviews", 1, "flagged"] }]);
        let entities = json!([{ "reviews": [{ "flagged": false }, null] }, { "reviews": [] }, { "reviews": [{ "flagged": null }] }]);
        assert_eq!(placed(error, entities), [Some(0)]);
    }

    #[test]
    fn errors_with_one_path_match_the_entities_it_marked_in_order() {
        let error = json!({ "message": "boom", "path": ["_entities", "a"] });
        let two = json!([error.clone(), error.clone()]);
        assert_eq!(
            placed(two, json!([null, { "a": 1 }, {}])),
            [Some(0), Some(2)]
        );
        // Two marked, one error: which one is not said.
        assert_eq!(
            placed(json!([error]), json!([{ "b": 1 }, null, null])),
            [None]
        );
    }

    #[test]
    fn indexed_errors_are_left_to_the_index() {
        let error = json!([{ "message": "boom", "path": ["_entities", 0, "a"] }]);
        assert_eq!(placed(error, json!([{}])), [None]);
    }

    #[test]
    fn a_null_an_error_goes_through_becomes_an_object() {
        let mut data =
            Value::from(json!({ "p": [{ "reviews": [{ "f": true }, null] }], "q": null }));
        reopen_emptied(
            &mut data,
            &[json!("p"), json!(0), json!("reviews"), json!(1), json!("f")],
        );
        reopen_emptied(&mut data, &[json!("q")]);
        assert_eq!(
            serde_json::Value::from(&data),
            json!({ "p": [{ "reviews": [{ "f": true }, {}] }], "q": null })
        );
    }
}
