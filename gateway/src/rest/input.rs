//! A REST request's GraphQL variables: each read from where its route says,
//! checked against the variable's GraphQL type, so a device learns which of
//! *its* fields is wrong (`items[1].qty must be an integer`), not which
//! GraphQL variable.

use std::collections::HashMap;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::rest::routes::{Input, Kind, Route, Source, Ty};

/// What a request offers its variables.
pub struct Request<'a> {
    pub body: Option<&'a Value>,
    pub path: &'a HashMap<String, String>,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
    pub bearer: Option<&'a str>,
}

/// Why a request's variables cannot be made: a message about its fields.
#[derive(Debug)]
pub struct Invalid(pub String);

/// The variables of `route` from `request`.
pub fn variables(route: &Route, request: &Request<'_>) -> Result<Map<String, Value>, Invalid> {
    let mut out = Map::new();
    for variable in &route.variables {
        let value = read(&variable.input, &variable.ty, request, None, route.trim, "")?;
        if let Some(value) = value {
            out.insert(variable.name.clone(), value);
        }
    }
    Ok(out)
}

/// The value of `input` (`None`: absent, allowed when `ty` is nullable);
/// `element` is the list element `each` reads from, `prefix` its name.
fn read(
    input: &Input,
    ty: &Ty,
    request: &Request<'_>,
    element: Option<&Value>,
    trim: bool,
    prefix: &str,
) -> Result<Option<Value>, Invalid> {
    match input {
        Input::Value {
            sources,
            one_of,
            decimal,
        } => {
            let present: Vec<(&Source, Value)> = sources
                .iter()
                .filter_map(|s| lookup(s, request, element).map(|v| (s, v)))
                .collect();
            let name = |s: &Source| format!("{prefix}{}", s.describe());
            let names = || {
                sources
                    .iter()
                    .map(name)
                    .collect::<Vec<_>>()
                    .join(if *one_of { " or " } else { ", " })
            };
            if *one_of && present.len() > 1 {
                return Err(Invalid(format!("give {}, not both", names())));
            }
            let Some((source, mut value)) = present.into_iter().next() else {
                if ty.nullable {
                    return Ok(None);
                }
                return Err(Invalid(format!("{} is required", names())));
            };
            if trim {
                trim_strings(&mut value);
            }
            if *decimal {
                value =
                    as_decimal(value).map_err(|why| Invalid(format!("{} {why}", name(source))))?;
            }
            check(&value, ty, &name(source), source_is_text(source))?;
            if source_is_text(source) {
                convert_text(&mut value, ty);
            }
            Ok(Some(value))
        }
        Input::Each { from, fields } => {
            let Some(list) = lookup(from, request, element) else {
                if ty.nullable {
                    return Ok(None);
                }
                return Err(Invalid(format!("{} is required", from.describe())));
            };
            let Value::Array(items) = list else {
                return Err(Invalid(format!("{} must be a list", from.describe())));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let here = format!("{}[{i}]", from.describe());
                if !item.is_object() {
                    return Err(Invalid(format!("{here} must be an object")));
                }
                let mut object = Map::new();
                for (field, input, field_ty) in fields {
                    let value = read(
                        input,
                        field_ty,
                        request,
                        Some(item),
                        trim,
                        &format!("{here}."),
                    )?;
                    if let Some(value) = value {
                        object.insert(field.clone(), value);
                    }
                }
                out.push(Value::Object(object));
            }
            Ok(Some(Value::Array(out)))
        }
    }
}

/// Whether a source gives text that may stand for a number or boolean
/// (path, query string, header).
fn source_is_text(source: &Source) -> bool {
    matches!(
        source,
        Source::Path(_) | Source::Query(_) | Source::Header(_)
    )
}

/// The value at `source`; JSON `null` counts as absent.
fn lookup(source: &Source, request: &Request<'_>, element: Option<&Value>) -> Option<Value> {
    let found = match source {
        Source::Body(path) => {
            let mut at = element.or(request.body)?;
            for key in path {
                at = at.as_object()?.get(key)?;
            }
            at.clone()
        }
        Source::Path(name) => Value::String(request.path.get(name)?.clone()),
        Source::Query(name) => Value::String(request.query.get(name)?.clone()),
        Source::Header(name) => {
            Value::String(request.headers.get(name)?.to_str().ok()?.trim().to_owned())
        }
        Source::Bearer => Value::String(request.bearer?.to_owned()),
        Source::Const(value) => value.clone(),
    };
    (!found.is_null()).then_some(found)
}

fn trim_strings(value: &mut Value) {
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            if trimmed.len() != s.len() {
                *s = trimmed.to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(trim_strings),
        Value::Object(map) => map.values_mut().for_each(trim_strings),
        _ => {}
    }
}

/// A number (or a string holding one) as its decimal text.
fn as_decimal(value: Value) -> Result<Value, &'static str> {
    match value {
        Value::Number(n) => Ok(Value::String(n.to_string())),
        Value::String(s)
            if !s.is_empty()
                && s.len() <= 40
                && s.parse::<f64>().is_ok_and(f64::is_finite)
                && s.chars().all(|c| c.is_ascii_digit() || "+-.".contains(c)) =>
        {
            Ok(Value::String(s))
        }
        _ => Err("must be a number"),
    }
}

/// Checks `value` against `ty` (text from a path, query or header may stand
/// for a number or boolean: it is converted in place by [`convert_text`]).
fn check(value: &Value, ty: &Ty, name: &str, text: bool) -> Result<(), Invalid> {
    let wrong = |what: &str| Err(Invalid(format!("{name} must be {what}")));
    if value.is_null() {
        return if ty.nullable {
            Ok(())
        } else {
            Err(Invalid(format!("{name} is required")))
        };
    }
    match &ty.kind {
        Kind::Int => match value {
            Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Ok(()),
            Value::String(s) if text && s.parse::<i32>().is_ok() => Ok(()),
            _ => wrong("an integer"),
        },
        Kind::Float => match value {
            Value::Number(_) => Ok(()),
            Value::String(s) if text && s.parse::<f64>().is_ok_and(f64::is_finite) => Ok(()),
            _ => wrong("a number"),
        },
        Kind::String => match value {
            Value::String(s) if s.contains('\0') => wrong("text without NUL characters"),
            Value::String(_) => Ok(()),
            _ => wrong("a string"),
        },
        Kind::Id => match value {
            Value::String(s) if s.contains('\0') => wrong("text without NUL characters"),
            Value::String(_) => Ok(()),
            Value::Number(n) if n.is_i64() => Ok(()),
            _ => wrong("a string"),
        },
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(()),
            Value::String(s) if text && matches!(s.as_str(), "true" | "false") => Ok(()),
            _ => wrong("true or false"),
        },
        Kind::Enum(_, values) => match value {
            Value::String(s) if values.iter().any(|v| v == s) => Ok(()),
            _ => wrong(&format!("one of {}", values.join(", "))),
        },
        Kind::Object(_, fields) => {
            let Value::Object(map) = value else {
                return wrong("an object");
            };
            for (key, _) in map {
                if !fields.iter().any(|(f, _)| f == key) {
                    return Err(Invalid(format!("{name}.{key} is not a field it takes")));
                }
            }
            for (field, field_ty) in fields {
                let inner = map.get(field).unwrap_or(&Value::Null);
                check(inner, field_ty, &format!("{name}.{field}"), false)?;
            }
            Ok(())
        }
        Kind::List(item) => {
            let Value::Array(items) = value else {
                return wrong("a list");
            };
            for (i, v) in items.iter().enumerate() {
                check(v, item, &format!("{name}[{i}]"), false)?;
            }
            Ok(())
        }
        Kind::Scalar(_) | Kind::Any => match value {
            Value::String(s) if s.contains('\0') => wrong("text without NUL characters"),
            _ => Ok(()),
        },
    }
}

/// Text from a path, query string or header converted to the JSON a
/// variable of `ty` takes (`"5"` → 5 for an `Int`).
fn convert_text(value: &mut Value, ty: &Ty) {
    if let Value::String(s) = value {
        let converted = match ty.kind {
            Kind::Int => s.parse::<i64>().ok().map(Value::from),
            Kind::Float => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            Kind::Boolean => s.parse::<bool>().ok().map(Value::Bool),
            _ => None,
        };
        if let Some(converted) = converted {
            *value = converted;
        }
    }
}
