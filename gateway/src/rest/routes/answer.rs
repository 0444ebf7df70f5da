//! A route's `answer:` read and checked against its document's selections.

use std::collections::HashMap;

use graphql_tools::parser::schema as s;
use marked_yaml::Node;

use super::*;
use super::{file::*, graphql::*};

/// One answer rule (see [`Shape`]); `types` learns each answer field's type.
pub(super) fn read_shape(
    node: &Node,
    operation: &Operation,
    schema: &Schema<'_>,
    label: &str,
    types: &mut HashMap<String, s::Type<'static, String>>,
    at: &str,
) -> Result<Shape, Problem> {
    let here = line(node);
    let pick = |raw: &str| -> Result<(Vec<String>, s::Type<'static, String>), Problem> {
        let rest = raw.strip_prefix('$').unwrap_or(raw);
        let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err((
                here,
                format!("{label}: {raw:?} is not a pick like $login.accessToken"),
            ));
        }
        let ty = operation
            .type_at(schema, &path)
            .map_err(|m| (here, format!("{label}: {raw}: {m}")))?;
        Ok((path, ty))
    };
    match node {
        Node::Scalar(s) if s.as_str().starts_with('$') && s.may_coerce() => {
            let (path, ty) = pick(s.as_str())?;
            types.insert(at.to_owned(), ty);
            Ok(Shape::Pick(path))
        }
        Node::Scalar(s) => Ok(Shape::Const(scalar_value(s))),
        Node::Sequence(_) => Ok(Shape::Const(constant(node)?)),
        Node::Mapping(map) if map.get_node("const").is_some() => {
            known_keys(map, &["const"]).map_err(|(l, m)| (l, format!("{label}: {m}")))?;
            Ok(Shape::Const(constant(
                map.get_node("const").expect("checked"),
            )?))
        }
        Node::Mapping(map) if map.get_node("pick").is_some() => {
            known_keys(map, &["pick", "enum", "map", "decimals", "timestamp"])
                .map_err(|(l, m)| (l, format!("{label}: {m}")))?;
            let raw = map.get_scalar("pick").ok_or_else(|| {
                (
                    here,
                    format!("{label}: `pick:` is a path like $order.status"),
                )
            })?;
            let (path, ty) = pick(raw.as_str())?;
            let rules = ["enum", "map", "decimals", "timestamp"]
                .iter()
                .filter(|k| map.get_node(k).is_some())
                .count();
            if rules > 1 {
                return Err((
                    here,
                    format!("{label}: one of enum, map, decimals or timestamp per pick"),
                ));
            }
            let type_name = named(&ty).to_owned();
            if let Some(renames) = map.get_node("enum") {
                let Some(s::TypeDefinition::Enum(e)) = schema.types.get(type_name.as_str()) else {
                    return Err((
                        line(renames),
                        format!("{label}: {} is {type_name}, not an enum", raw.as_str()),
                    ));
                };
                let renames = renames.as_mapping().ok_or_else(|| {
                    (
                        line(renames),
                        format!("{label}: `enum:` maps values to names"),
                    )
                })?;
                let mut out = HashMap::new();
                for (value, name) in renames.iter() {
                    if !e.values.iter().any(|v| v.name == value.as_str()) {
                        return Err((
                            scalar_line(value),
                            format!("{label}: {type_name} has no value {}", value.as_str()),
                        ));
                    }
                    let name = name.as_scalar().ok_or_else(|| {
                        (line(name), format!("{label}: an enum value's name is text"))
                    })?;
                    out.insert(value.as_str().to_owned(), name.as_str().to_owned());
                }
                types.insert(at.to_owned(), ty);
                return Ok(Shape::Enum(path, out));
            }
            if let Some(rule) = map.get_node("map") {
                if !is_list(&ty) {
                    return Err((
                        line(rule),
                        format!("{label}: {} is not a list; `map` needs one", raw.as_str()),
                    ));
                }
                let rule_map = rule.as_mapping().ok_or_else(|| {
                    (line(rule), format!("{label}: `map:` has `key` and `value`"))
                })?;
                known_keys(rule_map, &["key", "value"])
                    .map_err(|(l, m)| (l, format!("{label}: {m}")))?;
                let mut part = |name: &str| -> Result<Vec<String>, Problem> {
                    let p = rule_map
                        .get_scalar(name)
                        .ok_or_else(|| (line(rule), format!("{label}: `map:` needs `{name}`")))?;
                    let parts: Vec<String> = p.as_str().split('.').map(str::to_owned).collect();
                    // Checked as a pick inside one element of the list.
                    let elem_ty = element_type(operation, schema, &path, &parts).map_err(|m| {
                        (
                            scalar_line(p),
                            format!("{label}: map {name} {}: {m}", p.as_str()),
                        )
                    })?;
                    types.insert(format!("{at}.{name}"), elem_ty);
                    Ok(parts)
                };
                let key = part("key")?;
                let value = part("value")?;
                return Ok(Shape::Map {
                    list: path,
                    key,
                    value,
                });
            }
            if let Some(decimals) = map.get_node("decimals") {
                let n = decimals
                    .as_scalar()
                    .and_then(|s| s.as_str().parse::<u32>().ok())
                    .filter(|n| *n <= 12)
                    .ok_or_else(|| (line(decimals), format!("{label}: decimals is 0 to 12")))?;
                if is_list(&ty)
                    || matches!(type_name.as_str(), "Boolean" | "ID")
                    || matches!(schema.types.get(type_name.as_str()), Some(t) if !matches!(t, s::TypeDefinition::Scalar(_)))
                {
                    return Err((
                        line(decimals),
                        format!("{label}: {} is {type_name}, not a number", raw.as_str()),
                    ));
                }
                types.insert(at.to_owned(), ty);
                return Ok(Shape::Decimals(path, n));
            }
            if let Some(unit) = map.get_node("timestamp") {
                if unit.as_scalar().map(|s| s.as_str()) != Some("seconds") {
                    return Err((
                        line(unit),
                        format!("{label}: timestamp: seconds is the one precision"),
                    ));
                }
                if is_list(&ty)
                    || matches!(schema.types.get(type_name.as_str()), Some(t) if !matches!(t, s::TypeDefinition::Scalar(_)))
                {
                    return Err((
                        line(unit),
                        format!("{label}: {} is {type_name}, not a timestamp", raw.as_str()),
                    ));
                }
                types.insert(at.to_owned(), ty);
                return Ok(Shape::Timestamp(path));
            }
            types.insert(at.to_owned(), ty);
            Ok(Shape::Pick(path))
        }
        Node::Mapping(map) => {
            let mut fields = Vec::new();
            for (key, value) in map.iter() {
                let at = format!("{at}/{}", key.as_str());
                fields.push((
                    key.as_str().to_owned(),
                    read_shape(value, operation, schema, label, types, &at)?,
                ));
            }
            Ok(Shape::Object(fields))
        }
    }
}
