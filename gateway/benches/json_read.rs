//! Reading subgraph answers: `cargo bench -p grocery-gateway --bench json_read`.
//!
//! Every subgraph answer passes through the gateway's own reader
//! (`gateway::value::read::envelope`). sonic-rs, a SIMD JSON parser, is
//! already compiled into the gateway (the query planner uses it), so it is
//! measured on the same answers: parsed into its own DOM (what it costs at
//! best, if the executor worked on sonic-rs values) and parsed then
//! converted into the gateway's `Value` (what it costs to swap readers).
//! serde_json into `serde_json::Value` is the baseline. Each answer is
//! checked to read to the same value every way before anything is timed.
//!
//! Prints, per answer shape, nanoseconds per answer and MB/s for each.
//! `BENCH_MILLIS` (default 1500) is the time given to each reader and shape.

use std::time::{Duration, Instant};

use gateway::value::{self, Map, Number, Value};
use serde_json::json;

/// Answers shaped like the federation bench's subgraphs': entity lists
/// with keys, names, prices and nested reviews; one with escaped and
/// non-ASCII strings.
fn answers() -> Vec<(&'static str, Vec<u8>)> {
    let product = |i: usize| {
        json!({
            "__typename": "Product",
            "upc": format!("{i}"),
            "name": format!("Product {i}"),
            "price": 899 + i,
            "weight": 100.5,
            "inStock": i.is_multiple_of(2),
            "reviews": [
                { "id": format!("r{i}"), "body": "Love it! Would buy again.", "author": { "id": "1", "username": "urigo" } },
                { "id": format!("s{i}"), "body": "Too expensive.", "author": { "id": "2", "username": "dotan" } },
            ],
        })
    };
    let entities = |n: usize| {
        let list: Vec<_> = (0..n).map(product).collect();
        serde_json::to_vec(&json!({ "data": { "_entities": list } })).unwrap()
    };
    let text = json!({ "data": { "_entities": (0..200).map(|i| json!({
        "__typename": "Review",
        "id": i,
        "body": format!("Très bien \"{i}\" — ünïcödé\n\ttabbed \\ slash 🍎"),
    })).collect::<Vec<_>>() } });
    vec![
        ("one entity (~300 B)", entities(1)),
        ("100 entities (~30 KB)", entities(100)),
        ("5,000 entities (~1.5 MB)", entities(5_000)),
        ("200 escaped strings", serde_json::to_vec(&text).unwrap()),
    ]
}

/// sonic-rs's DOM as the gateway's `Value`.
fn from_sonic(v: &sonic_rs::Value) -> Value {
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};
    if v.is_null() {
        Value::Null
    } else if let Some(b) = v.as_bool() {
        Value::Bool(b)
    } else if let Some(s) = v.as_str() {
        Value::String(value::Str::new(s))
    } else if let Some(n) = v.as_u64() {
        Value::Number(Number::from(n))
    } else if let Some(n) = v.as_i64() {
        Value::Number(Number::from(n))
    } else if let Some(n) = v.as_f64() {
        Value::Number(Number::from_f64(n).expect("JSON numbers are finite"))
    } else if let Some(list) = v.as_array() {
        Value::Array(list.iter().map(from_sonic).collect())
    } else if let Some(object) = v.as_object() {
        let mut map = Map::new();
        for (key, value) in object.iter() {
            map.insert(key, from_sonic(value));
        }
        Value::Object(map)
    } else {
        unreachable!("every JSON value is one of the above")
    }
}

fn gateway_read(bytes: &[u8]) -> Value {
    value::read::envelope(bytes)
        .expect("the gateway reads it")
        .data
        .expect("data")
}

fn sonic_dom(bytes: &[u8]) -> sonic_rs::Value {
    sonic_rs::from_slice(bytes).expect("sonic-rs reads it")
}

fn sonic_converted(bytes: &[u8]) -> Value {
    let dom = sonic_dom(bytes);
    from_sonic(sonic_rs::JsonValueTrait::get(&dom, "data").expect("data"))
}

fn serde_dom(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("serde_json reads it")
}

/// Nanoseconds per call of `read` on `bytes`, over about `budget`.
fn time<T>(bytes: &[u8], budget: Duration, read: impl Fn(&[u8]) -> T) -> f64 {
    // Warm-up, and a count that fills the budget.
    let started = Instant::now();
    let mut warm = 0u64;
    while started.elapsed() < budget / 10 {
        std::hint::black_box(read(std::hint::black_box(bytes)));
        warm += 1;
    }
    let per_turn = (warm * 9).max(1);
    let started = Instant::now();
    for _ in 0..per_turn {
        std::hint::black_box(read(std::hint::black_box(bytes)));
    }
    started.elapsed().as_nanos() as f64 / per_turn as f64
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MILLIS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    println!(
        "{:<26} {:>9}  {:>20} {:>20} {:>20} {:>20}",
        "answer", "bytes", "gateway reader", "sonic-rs → Value", "sonic-rs DOM", "serde_json DOM"
    );
    for (name, bytes) in answers() {
        // The same value every way, before anything is timed.
        let ours = gateway_read(&bytes);
        let theirs = sonic_converted(&bytes);
        let mut a = Vec::new();
        let mut b = Vec::new();
        ours.write_json(&mut a);
        theirs.write_json(&mut b);
        assert_eq!(a, b, "{name}: the readers disagree");
        let expected = serde_dom(&bytes)["data"].clone();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&a).unwrap(),
            expected,
            "{name}"
        );

        let mb = |ns: f64| bytes.len() as f64 / ns * 1e9 / 1e6;
        let cell = |ns: f64| format!("{:>9.0} ns {:>5.0} MB/s", ns, mb(ns));
        let ours = time(&bytes, budget, gateway_read);
        let converted = time(&bytes, budget, sonic_converted);
        let dom = time(&bytes, budget, sonic_dom);
        let serde = time(&bytes, budget, serde_dom);
        println!(
            "{name:<26} {:>9}  {:>20} {:>20} {:>20} {:>20}",
            bytes.len(),
            cell(ours),
            cell(converted),
            cell(dom),
            cell(serde)
        );
    }
}
