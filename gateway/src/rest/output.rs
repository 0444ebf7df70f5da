//! The REST answer made of a GraphQL one: the route's shape applied to
//! `data`, or the route file's error body for the first error.

use axum::http::StatusCode;
use serde_json::Value;

use crate::rest::routes::{ErrorRules, Shape};

/// A JSON value as a REST answer writes it: numbers may keep the digits a
/// rule gave them (`3.00`), which `serde_json::Value` cannot hold.
#[derive(Debug)]
pub enum Out {
    Json(Value),
    /// A number's text, written as it is.
    Number(String),
    Object(Vec<(String, Out)>),
}

impl Out {
    /// The answer as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            // Writing to a Vec cannot fail.
            Self::Json(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Self::Number(text) => out.extend_from_slice(text.as_bytes()),
            Self::Object(fields) => {
                out.push(b'{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut *out, key);
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// `shape` applied to `data`. A pick that finds nothing is `null`.
pub fn shape(shape: &Shape, data: &Value) -> Out {
    match shape {
        Shape::Const(v) => Out::Json(v.clone()),
        Shape::Pick(path) => Out::Json(at(data, path).cloned().unwrap_or(Value::Null)),
        Shape::Enum(path, renames) => Out::Json(match at(data, path) {
            Some(Value::String(s)) => Value::String(renames.get(s).unwrap_or(s).clone()),
            other => other.cloned().unwrap_or(Value::Null),
        }),
        Shape::Map { list, key, value } => {
            let mut fields: Vec<(String, Value)> = Vec::new();
            for item in at(data, list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(k) = at(item, key).and_then(|k| match k {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }) else {
                    continue;
                };
                let v = at(item, value).cloned().unwrap_or(Value::Null);
                match fields.iter_mut().find(|(name, _)| *name == k) {
                    Some((_, existing)) => *existing = add(existing, v),
                    None => fields.push((k, v)),
                }
            }
            Out::Object(fields.into_iter().map(|(k, v)| (k, Out::Json(v))).collect())
        }
        Shape::Decimals(path, places) => match at(data, path) {
            Some(Value::String(s)) => {
                round(s, *places).map_or_else(|| Out::Json(Value::Null), Out::Number)
            }
            Some(Value::Number(n)) => {
                round(&n.to_string(), *places).map_or_else(|| Out::Json(Value::Null), Out::Number)
            }
            _ => Out::Json(Value::Null),
        },
        Shape::Timestamp(path) => Out::Json(match at(data, path) {
            Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| {
                    Value::String(
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%SZ")
                            .to_string(),
                    )
                })
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }),
        Shape::Object(fields) => Out::Object(
            fields
                .iter()
                .map(|(name, rule)| (name.clone(), self::shape(rule, data)))
                .collect(),
        ),
    }
}

/// A repeated key's values: numbers summed, otherwise the last one.
fn add(a: &Value, b: Value) -> Value {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.checked_add(y).map_or(b, Value::from),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => serde_json::Number::from_f64(x + y).map_or(b, Value::Number),
            _ => b,
        },
    }
}

fn at<'v>(mut value: &'v Value, path: &[String]) -> Option<&'v Value> {
    for key in path {
        value = value.as_object()?.get(key)?;
    }
    Some(value)
}

/// A decimal's text rounded half away from zero to `places` decimals, as
/// the contract writes money (`3` → `3.00`); `None` when it is not a decimal.
pub fn round(text: &str, places: u32) -> Option<String> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 30
    {
        return None;
    }
    let places = places as usize;
    // Every digit kept, as one integer of `places` decimals.
    let mut kept: Vec<u8> = whole.bytes().map(|b| b - b'0').collect();
    if kept.is_empty() {
        kept.push(0);
    }
    let frac: Vec<u8> = fraction.bytes().map(|b| b - b'0').collect();
    for i in 0..places {
        kept.push(frac.get(i).copied().unwrap_or(0));
    }
    if frac.get(places).is_some_and(|d| *d >= 5) {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let split = kept.len() - places;
    let int: String = kept[..split].iter().map(|d| char::from(b'0' + d)).collect();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let dec: String = kept[split..].iter().map(|d| char::from(b'0' + d)).collect();
    let zero = int == "0" && dec.bytes().all(|b| b == b'0');
    let sign = if negative && !zero { "-" } else { "" };
    Some(if places == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{dec}")
    })
}

/// A REST error: its status and body.
pub struct RestError {
    pub status: StatusCode,
    pub body: Out,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// Where a partner stands against its quotas (`RateLimit-Policy`, `RateLimit`).
    pub quota: Option<crate::pipeline::usage::Standing>,
}

/// The error body for one GraphQL error (`{"message", "extensions"}`),
/// after `rules`: its status from `extensions.code`, the file's constant
/// fields, then `code`, `message` and the error's other details. A code
/// with no status is a 500 that tells nothing of the inside.
pub fn error(rules: &ErrorRules, error: &Value) -> RestError {
    error_or(rules, error, None)
}

/// [`error`], where a code with no status takes `refused` (the gateway's own
/// 4xx for a request it refused: a limit, a malformed document) when given.
pub fn error_or(rules: &ErrorRules, error: &Value, refused: Option<StatusCode>) -> RestError {
    let extensions = error.get("extensions").and_then(Value::as_object);
    let code = extensions
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("INTERNAL_SERVER_ERROR");
    let known = rules
        .statuses
        .get(code)
        .copied()
        .or(refused.filter(StatusCode::is_client_error));
    let status = known.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = extensions
        .and_then(|e| e.get("retryAfter"))
        .and_then(Value::as_u64);
    if known.is_none() {
        return plain(
            rules,
            status,
            "INTERNAL_SERVER_ERROR",
            "internal error",
            retry_after,
        );
    }
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let mut body = constants(rules);
    body.push(("code".into(), Out::Json(Value::String(code.to_owned()))));
    body.push((
        "message".into(),
        Out::Json(Value::String(message.to_owned())),
    ));
    for (key, value) in extensions.into_iter().flatten() {
        // The subgraph's name is the gateway's business, not the device's.
        if !matches!(key.as_str(), "code" | "serviceName")
            && !rules.body.iter().any(|(k, _)| k == key)
        {
            body.push((key.clone(), Out::Json(value.clone())));
        }
    }
    RestError {
        status,
        body: Out::Object(body),
        retry_after,
        quota: None,
    }
}

/// An error the REST edge makes itself (bad JSON, unknown path…).
pub fn plain(
    rules: &ErrorRules,
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<u64>,
) -> RestError {
    let mut body = constants(rules);
    body.push(("code".into(), Out::Json(Value::String(code.to_owned()))));
    body.push((
        "message".into(),
        Out::Json(Value::String(message.to_owned())),
    ));
    RestError {
        status,
        body: Out::Object(body),
        retry_after,
        quota: None,
    }
}

fn constants(rules: &ErrorRules) -> Vec<(String, Out)> {
    rules
        .body
        .iter()
        .map(|(k, v)| (k.clone(), Out::Json(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::round;

    #[test]
    fn decimals_round_half_away_from_zero() {
        for (text, places, want) in [
            ("3", 2, "3.00"),
            ("3.005", 2, "3.01"),
            ("3.004", 2, "3.00"),
            ("9.999", 2, "10.00"),
            ("-1.005", 2, "-1.01"),
            ("-0.001", 2, "0.00"),
            ("0.5", 0, "1"),
            (".25", 1, "0.3"),
            ("12.3456", 4, "12.3456"),
        ] {
            assert_eq!(
                round(text, places).as_deref(),
                Some(want),
                "{text} to {places}"
            );
        }
        for bad in ["", "-", "1e3", "abc", "1.2.3", "."] {
            assert_eq!(round(bad, 2), None, "{bad:?}");
        }
    }
}
